import { describe, expect, it } from 'vitest'
import { createHeapBound } from '../../../ingest/replay-heap-bound.ts'

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
