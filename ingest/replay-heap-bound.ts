// Keeps replay's heaps near what they hold. Replay allocates fast and keeps little (a merge holds one
// record per open run; the correlator its bounded windows), and V8 sizes the old generation from the
// allocation rate, not from what survives: over 2,000,000 events the main thread's heap grew by 160 MiB
// of garbage (after a full collection, 12 MiB were alive). Every `every` calls, when the heap has grown
// past `maxHeapBytes` and past twice what was alive after the last collection, this runs a full
// collection: a few milliseconds for a heap that holds little, and it only frees memory, so nothing the
// output depends on changes.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

export type HeapBound = { tick(): void; collections(): number }

export type HeapBoundDeps = {
  /** The heap's size and the bytes in use (process.memoryUsage's heapTotal and heapUsed). */
  heap: () => { heapTotal: number; heapUsed: number }
  /** A full collection. */
  gc: () => void
}

export function createHeapBound(
  config: { maxHeapBytes: number; every?: number },
  deps: HeapBoundDeps = { heap: () => process.memoryUsage(), gc: exposedGc() },
): HeapBound {
  const every = config.every ?? 10_000
  let calls = 0
  let collections = 0
  let aliveAfter = 0
  return {
    tick() {
      if (++calls % every !== 0) return
      const { heapTotal } = deps.heap()
      if (heapTotal <= config.maxHeapBytes || heapTotal <= 2 * aliveAfter) return
      deps.gc()
      aliveAfter = deps.heap().heapUsed
      collections++
    },
    collections: () => collections,
  }
}

/**
 * V8's `gc`, exposed to contexts made after the flag is set; the flag is process-wide and only adds the
 * function, which nothing else looks for.
 */
function exposedGc(): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}
