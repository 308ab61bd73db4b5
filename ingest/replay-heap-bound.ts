// Keeps replay's heaps near what they hold. Replay allocates fast and keeps little (a merge holds one
// record per open run; the correlator its bounded windows), and V8 sizes the old generation from the
// allocation rate, not from what survives: over 2,000,000 events the main thread's heap grew by 160 MiB
// of garbage (after a full collection, 12 MiB were alive). Every `every` calls, when the old generation
// has grown past `maxOldBytes` and past twice what was alive in it after the last collection, this runs
// a full collection: a few milliseconds for a heap that holds little, and it only frees memory, so
// nothing the output depends on changes. The young generation is left out: it is sized by flags, and
// counting it made a process with 64 MiB semi-spaces collect every few thousand events.
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

export type HeapBound = { tick(): void; collections(): number }

export type HeapBoundDeps = {
  /** The old generation's size and the bytes in use in it (every heap space but the young ones). */
  heap: () => { size: number; used: number }
  /** A full collection. */
  gc: () => void
}

export function createHeapBound(
  config: { maxOldBytes: number; every?: number },
  deps: HeapBoundDeps = { heap: oldGeneration, gc: exposedGc() },
): HeapBound {
  const every = config.every ?? 10_000
  let calls = 0
  let collections = 0
  let aliveAfter = 0
  return {
    tick() {
      if (++calls % every !== 0) return
      const { size } = deps.heap()
      if (size <= config.maxOldBytes || size <= 2 * aliveAfter) return
      deps.gc()
      aliveAfter = deps.heap().used
      collections++
    },
    collections: () => collections,
  }
}

function oldGeneration(): { size: number; used: number } {
  let size = 0
  let used = 0
  for (const space of getHeapSpaceStatistics()) {
    if (space.space_name.startsWith('new_')) continue
    size += space.space_size
    used += space.space_used_size
  }
  return { size, used }
}

/**
 * V8's `gc`, exposed to contexts made after the flag is set; the flag is process-wide and only adds the
 * function, which nothing else looks for.
 */
function exposedGc(): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

/**
 * Keeps the young generation at its starting size (--semi-space-growth-factor=1): a replay's garbage is
 * parsed records that die young, and semi-spaces that grow toward the bin's 64 MiB cost about 130 MiB of
 * resident memory. Starting a worker thread sets the factor back (measured: after a thread had started
 * and ended, the main thread's young generation grew to 64 MiB under the same allocations that kept it
 * at 2), so the decoding pool calls this again once its threads are done, before the merge.
 */
export function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1')
}
