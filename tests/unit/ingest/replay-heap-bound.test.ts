import { describe, expect, it } from 'vitest'
import { createHeapBound } from '../../../ingest/replay-heap-bound.ts'

describe('createHeapBound', () => {
  it('collects every `every` ticks while the heap is over its bound and twice what was alive', () => {
    let heapTotal = 100
    let heapUsed = 90
    const collected: number[] = []
    const bound = createHeapBound(
      { maxHeapBytes: 50, every: 2 },
      { heap: () => ({ heapTotal, heapUsed }), gc: () => collected.push(heapTotal) },
    )
    bound.tick()
    expect(bound.collections()).toBe(0)
    heapUsed = 60
    bound.tick()
    expect(bound.collections()).toBe(1)
    // 100 is not past twice the 60 alive after that collection.
    bound.tick()
    bound.tick()
    expect(bound.collections()).toBe(1)
    heapTotal = 121
    bound.tick()
    bound.tick()
    expect(bound.collections()).toBe(2)
    // Under the bound: none.
    heapTotal = 50
    heapUsed = 10
    for (let n = 0; n < 6; n++) bound.tick()
    expect(bound.collections()).toBe(2)
  })

  it('runs the real collector by default', () => {
    const bound = createHeapBound({ maxHeapBytes: 0, every: 1 })
    bound.tick()
    expect(bound.collections()).toBe(1)
  })
})
