import { describe, expect, it } from 'vitest'
import { createHeapBound } from '../../../ingest/replay-heap-bound.ts'

describe('createHeapBound', () => {
  it('runs a full collection every `every` ticks, only while the heap is over its bound', () => {
    const over = createHeapBound({ maxHeapBytes: 0, every: 3 })
    for (let n = 0; n < 7; n++) over.tick()
    expect(over.collections()).toBe(2)
    const under = createHeapBound({ maxHeapBytes: Number.MAX_SAFE_INTEGER, every: 1 })
    for (let n = 0; n < 5; n++) under.tick()
    expect(under.collections()).toBe(0)
  })
})
