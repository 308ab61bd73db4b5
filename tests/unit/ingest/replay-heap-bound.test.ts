import { execFile } from 'node:child_process'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { createHeapBound, replayYoungBytes } from '../../../ingest/replay-heap-bound.ts'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '../../..')

describe('createHeapBound', () => {
  it('collects every `every` ticks while the heap is over its bound and twice what was alive', () => {
    let size = 100
    let used = 90
    const collected: number[] = []
    const bound = createHeapBound(
      { maxOldBytes: 50, every: 2 },
      { heap: () => ({ size, used }), gc: () => collected.push(size) },
    )
    bound.tick()
    expect(bound.collections()).toBe(0)
    used = 60
    bound.tick()
    expect(bound.collections()).toBe(1)
    // 100 is not past twice the 60 alive after that collection.
    bound.tick()
    bound.tick()
    expect(bound.collections()).toBe(1)
    size = 121
    bound.tick()
    bound.tick()
    expect(bound.collections()).toBe(2)
    // Under the bound: none.
    size = 50
    used = 10
    for (let n = 0; n < 6; n++) bound.tick()
    expect(bound.collections()).toBe(2)
  })

  it('lets the young generation grow to youngBytes, then holds it there', () => {
    let young = 2
    const factors: number[] = []
    const bound = createHeapBound(
      { maxOldBytes: 1_000, every: 1_000, youngBytes: 32, youngEvery: 2 },
      {
        heap: () => ({ size: 0, used: 0 }),
        gc: () => {},
        young: () => young,
        growthFactor: (f) => factors.push(f),
      },
    )
    bound.tick()
    expect(factors).toEqual([])
    bound.tick()
    // Under youngBytes: V8's doubling, set once however many looks find it under.
    expect(factors).toEqual([2])
    young = 16
    bound.tick()
    bound.tick()
    expect(factors).toEqual([2])
    young = 32
    bound.tick()
    bound.tick()
    expect(factors).toEqual([2, 1])
    bound.tick()
    bound.tick()
    expect(factors).toEqual([2, 1])
    // Shrunk (a memory-reducing collection): it may grow back, up to youngBytes again.
    young = 8
    bound.tick()
    bound.tick()
    expect(factors).toEqual([2, 1, 2])
  })

  it('sets the growth factor again once told that a new heap reset it', () => {
    // V8 sets the process-wide factor back to 2 whenever a heap is made (a decoding thread started):
    // held at 1 by a main thread that decodes beside it, its young generation then doubled to 128 MiB.
    const young = 32
    const factors: number[] = []
    const bound = createHeapBound(
      { maxOldBytes: 1_000, every: 1_000, youngBytes: 32 },
      {
        heap: () => ({ size: 0, used: 0 }),
        gc: () => {},
        young: () => young,
        growthFactor: (f) => factors.push(f),
      },
    )
    bound.tick()
    bound.tick()
    expect(factors).toEqual([1])
    bound.youngChanged()
    bound.tick()
    bound.tick()
    expect(factors).toEqual([1, 1])
  })

  it('leaves the young generation alone without youngBytes', () => {
    const factors: number[] = []
    const bound = createHeapBound(
      { maxOldBytes: 1_000, every: 1 },
      {
        heap: () => ({ size: 0, used: 0 }),
        gc: () => {},
        young: () => 1,
        growthFactor: (f) => factors.push(f),
      },
    )
    for (let n = 0; n < 5; n++) bound.tick()
    expect(factors).toEqual([])
  })

  it('runs the real collector by default', () => {
    const bound = createHeapBound({ maxOldBytes: 0, every: 1 })
    bound.tick()
    expect(bound.collections()).toBe(1)
  })
})

describe('keepYoungGenerationSmall', () => {
  // A process of its own with the bin's 64 MiB semi-spaces: decoding threads, once started, let the
  // main thread's young generation grow to them unless the pool keeps it small again before the merge.
  const youngAfter = async (threads: number, youngBytes?: number) => {
    const { stdout } = await run(
      process.execPath,
      [
        '--max-semi-space-size=64',
        '--import',
        'tsx',
        join(root, 'tests/helpers/young-generation-after-decode.ts'),
        String(threads),
        ...(youngBytes === undefined ? [] : [String(youngBytes)]),
      ],
      { cwd: root },
    )
    return Number(stdout.trim())
  }

  it('holds after decoding threads have run, as without them', { timeout: 60_000 }, async () => {
    const [withThreads, without] = await Promise.all([youngAfter(2), youngAfter(0)])
    expect(without).toBeLessThanOrEqual(4)
    expect(withThreads).toBeLessThanOrEqual(4)
  })

  it('grows to replayYoungBytes and no further in the merge, with or without decoding threads', {
    timeout: 60_000,
  }, async () => {
    const mib = replayYoungBytes / 2 ** 20
    const [alone, withThreads] = await Promise.all([
      youngAfter(0, replayYoungBytes),
      youngAfter(2, replayYoungBytes),
    ])
    expect(alone).toBeGreaterThan(4)
    expect(alone).toBeLessThanOrEqual(mib)
    // Decoding threads have ended when the merge starts: its young generation grows as it does alone
    // (held at its start, the merge ran three times the scavenges).
    expect(withThreads).toBeGreaterThan(4)
    expect(withThreads).toBeLessThanOrEqual(mib)
  })
})
