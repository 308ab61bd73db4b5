// Keeps replay's heaps near what they hold. Replay allocates fast and keeps little (a merge holds one
// record per open run; the correlator its bounded windows), and V8 sizes the old generation from the
// allocation rate, not from what survives: over 2,000,000 events the main thread's heap grew by 160 MiB
// of garbage (after a full collection, 12 MiB were alive). Every `every` calls, when the old generation
// has grown past `maxOldBytes` and past twice what was alive in it after the last collection, this runs
// a full collection: a few milliseconds for a heap that holds little, and it only frees memory, so
// nothing the output depends on changes. The young generation is left out: it is sized by flags, and
// counting it made a process with 64 MiB semi-spaces collect every few thousand events.
//
// The young generation has a bound of its own (`youngBytes`): replay keeps it at its starting size
// (keepYoungGenerationSmall: V8's growth factor 1) and, when the main thread decodes alone and in the
// merge (decoding threads, if any, have ended by then), lets it grow to a set size and holds it there.
// Held at 2 MiB, the parsed records of a CloudTrail file (1,000 of them, alive until the file is done)
// met a scavenge every 900 events or so, which copied and promoted them; at 32 MiB there are half as
// many scavenges, for 3-7 % less CPU and 12-25 MiB more resident memory (docs/replay-rounds.md), where the
// bin's 64 MiB semi-spaces cost about 130 MiB.
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

export type HeapBound = {
  tick(): void
  collections(): number
  /**
   * Says that V8's growth factor may no longer be the one last set (a thread's heap was made: V8 sets
   * it to 2 for each new heap), so the next look at the young generation sets it again.
   */
  youngChanged(): void
}

export type HeapBoundDeps = {
  /** The old generation's size and the bytes in use in it (every heap space but the young ones). */
  heap: () => { size: number; used: number }
  /** A full collection. */
  gc: () => void
  /** The young generation's size (V8's new space). */
  young?: () => number
  /** Sets V8's semi-space growth factor (1: the young generation no longer grows). */
  growthFactor?: (factor: number) => void
}

export type HeapBoundConfig = {
  maxOldBytes: number
  /** Ticks between looks at the old generation. */
  every?: number
  /**
   * Lets the young generation grow until it reaches this size, then holds it (the growth factor back to
   * 1); looked at every `youngEvery` ticks (default: every tick). Unset: the young generation is left as
   * it is.
   */
  youngBytes?: number
  youngEvery?: number
}

/** V8's default semi-space growth factor: the young generation doubles when a scavenge keeps much. */
const defaultGrowthFactor = 2

export function createHeapBound(config: HeapBoundConfig, deps: HeapBoundDeps = defaultDeps()): HeapBound {
  const every = config.every ?? 10_000
  const youngEvery = config.youngEvery ?? 1
  const young = deps.young ?? youngGeneration
  const growthFactor = deps.growthFactor ?? setGrowthFactor
  let calls = 0
  let collections = 0
  let aliveAfter = 0
  /** The factor last set; undefined until the young generation is first looked at. */
  let factor: number | undefined
  const holdYoung = (bytes: number) => {
    const wanted = young() < bytes ? defaultGrowthFactor : 1
    if (wanted === factor) return
    factor = wanted
    growthFactor(wanted)
  }
  return {
    tick() {
      ++calls
      if (config.youngBytes !== undefined && calls % youngEvery === 0) holdYoung(config.youngBytes)
      if (calls % every !== 0) return
      const { size } = deps.heap()
      if (size <= config.maxOldBytes || size <= 2 * aliveAfter) return
      deps.gc()
      aliveAfter = deps.heap().used
      collections++
    },
    collections: () => collections,
    youngChanged() {
      factor = undefined
    },
  }
}

const defaultDeps = (): HeapBoundDeps => ({ heap: oldGeneration, gc: exposedGc() })

function youngGeneration(): number {
  for (const space of getHeapSpaceStatistics()) if (space.space_name === 'new_space') return space.space_size
  return 0
}

const setGrowthFactor = (factor: number) => setFlagsFromString(`--semi-space-growth-factor=${factor}`)

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
 * resident memory. Starting a worker thread sets the factor back: V8 raises it to 2 whenever it makes a
 * heap (measured: after a thread had started, the main thread's young generation grew to 64 MiB under
 * the same allocations that kept it at 2), so the decoding pool calls this again once its threads are
 * done, before the merge, and a main thread that decodes beside them sets it again once they are up
 * (HeapBound.youngChanged).
 */
export function keepYoungGenerationSmall(): void {
  setGrowthFactor(1)
}

/**
 * The young generation replay's main thread may grow to when it decodes alone and when it merges (V8's new
 * space as getHeapSpaceStatistics reports it; what `--min-semi-space-size=16` starts with).
 */
export const replayYoungBytes = 32 * 1024 * 1024
