// The buffered entries by when they leave: a min-heap of slots by (expiry, seq), so eviction, the memory
// budget and the per-agent cap find the entry that would expire first. The expiry lives only here, beside
// the heap order, so sifting reads packed memory; a slot's position is kept in its heapPos.
import type { EntrySlots } from './entry-slots.ts'

export type ExpiryHeap = {
  size(): number
  /** The slot that expires first, and when (size() > 0). */
  top(): number
  topKey(): number
  /** When the entry at `slot` is evicted. */
  expiry(slot: number): number
  push(slot: number, expiry: number): void
  remove(slot: number): void
  /** Moves a slot's expiry later. */
  extend(slot: number, expiry: number): void
  grow(capacity: number): void
}

export function createExpiryHeap(s: EntrySlots, initialCapacity: number): ExpiryHeap {
  let heap = new Int32Array(initialCapacity)
  let heapKey = new Float64Array(initialCapacity)
  let heapSize = 0

  const less = (i: number, j: number) => {
    const a = heapKey[i] as number
    const b = heapKey[j] as number
    return a < b || (a === b && (s.seq[heap[i] as number] as number) < (s.seq[heap[j] as number] as number))
  }
  const place = (pos: number, slot: number, key: number) => {
    heap[pos] = slot
    heapKey[pos] = key
    s.heapPos[slot] = pos
  }
  const siftUp = (pos: number) => {
    const slot = heap[pos] as number
    const key = heapKey[pos] as number
    const seq = s.seq[slot] as number
    while (pos > 0) {
      const parent = (pos - 1) >> 1
      const pk = heapKey[parent] as number
      if (pk < key || (pk === key && (s.seq[heap[parent] as number] as number) < seq)) break
      place(pos, heap[parent] as number, pk)
      pos = parent
    }
    place(pos, slot, key)
  }
  const siftDown = (pos: number) => {
    for (;;) {
      const l = 2 * pos + 1
      const r = l + 1
      let m = pos
      if (l < heapSize && less(l, m)) m = l
      if (r < heapSize && less(r, m)) m = r
      if (m === pos) return
      const slot = heap[pos] as number
      const key = heapKey[pos] as number
      place(pos, heap[m] as number, heapKey[m] as number)
      place(m, slot, key)
      pos = m
    }
  }
  const heapRemove = (pos: number) => {
    heapSize--
    if (pos === heapSize) return
    place(pos, heap[heapSize] as number, heapKey[heapSize] as number)
    siftDown(pos)
    siftUp(pos)
  }

  return {
    size: () => heapSize,
    top: () => heap[0] as number,
    topKey: () => heapKey[0] as number,
    expiry: (slot) => heapKey[s.heapPos[slot] as number] as number,
    push: (slot, expiry) => {
      heapKey[heapSize] = expiry
      heap[heapSize] = slot
      heapSize++
      siftUp(heapSize - 1)
    },
    remove: (slot) => heapRemove(s.heapPos[slot] as number),
    extend: (slot, expiry) => {
      const pos = s.heapPos[slot] as number
      heapKey[pos] = expiry
      siftDown(pos)
    },
    grow: (capacity) => {
      const h = new Int32Array(capacity)
      h.set(heap)
      heap = h
      const k = new Float64Array(capacity)
      k.set(heapKey)
      heapKey = k
    },
  }
}
