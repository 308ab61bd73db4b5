// Keeps replay's heap near what it holds. Replay allocates fast and keeps little (a merge holds one
// record per open run; the correlator its bounded windows), and V8 sizes the old generation from the
// allocation rate, not from what survives: over 2,000,000 events the main thread's heap grew by 160 MiB
// of garbage (after a full collection, 12 MiB were alive). Every `every` calls, when the heap has grown
// past `maxHeapBytes`, this runs a full collection: a few milliseconds for a heap that holds little, and
// it only frees memory, so nothing the output depends on changes.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

export type HeapBound = { tick(): void; collections(): number }

export function createHeapBound(options: { maxHeapBytes: number; every?: number }): HeapBound {
  const every = options.every ?? 10_000
  // `gc` is exposed to contexts made after the flag is set; the flag is process-wide and only adds the
  // function, which nothing else looks for.
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  let calls = 0
  let collections = 0
  return {
    tick() {
      if (++calls % every !== 0) return
      if (process.memoryUsage().heapTotal <= options.maxHeapBytes) return
      gc()
      collections++
    },
    collections: () => collections,
  }
}
