import { execFile } from 'node:child_process'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { createHeapBound } from '../../../ingest/replay-heap-bound.ts'

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

  it('runs the real collector by default', () => {
    const bound = createHeapBound({ maxOldBytes: 0, every: 1 })
    bound.tick()
    expect(bound.collections()).toBe(1)
  })
})

describe('keepYoungGenerationSmall', () => {
  // A process of its own with the bin's 64 MiB semi-spaces: decoding threads, once started, let the
  // main thread's young generation grow to them unless the pool keeps it small again before the merge.
  const youngAfter = async (threads: number) => {
    const { stdout } = await run(
      process.execPath,
      [
        '--max-semi-space-size=64',
        '--import',
        'tsx',
        join(root, 'tests/helpers/young-generation-after-decode.ts'),
        String(threads),
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
})
