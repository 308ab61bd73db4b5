// What `nerve replay` needs from the correlator: ordered NormalizedEvents in, correlations and counts out,
// deterministically (one stream time over the whole input: replay is one partition). Every repeated event
// id is counted as a duplicate and skipped: in input order all ids are remembered; in the merged time
// order (`sameTimeDuplicates`), where a copy of an event sorts next to it, only the ids of the current
// event time are, so memory does not grow with the input (the correlator's own window dedupe still
// catches a repeated id at another time while its window is open). An event
// the correlator will ignore whatever comes before it may be held as a time-only stand-in (standIn()),
// which replay must keep until it can sort: the same output for a fraction of the memory.
import type { LateEvent } from '../bus/topics.ts'
import type { Config, Correlation, NormalizedEvent } from '../schemas/types.ts'
import { conflictingCopies } from './conflicting-copies.ts'
import { createCorrelator } from './correlator.ts'
import { correlatorConfigOf } from './correlator-config.ts'
import type { IgnoredReason } from './correlator-types.ts'
import type { RevokeConfirmation } from './revoke-confirmations.ts'

export type ReplayCounts = {
  read: number
  duplicate: number
  late: number
  correlations: number
  ignored: Record<IgnoredReason, number>
  confirmations: number
  overflow: number
  /** Of the duplicates, those that differ from their first copy in what matters (conflicting-copies.ts). */
  duplicate_conflicts: number
}

/** What replay holds of an event whose one effect is on stream time (Correlator.alwaysIgnored). */
export type TimeOnlyEvent = { id: string; time: number; time_ns: number; ignored: IgnoredReason }

export type Replay = {
  /** The stand-in to hold instead of the event, when all it will ever do is move stream time. */
  standIn(event: Omit<NormalizedEvent, 'agent'>): TimeOnlyEvent | undefined
  /** Feeds one event; returns the correlations it completed, in emission order. */
  push(event: NormalizedEvent | TimeOnlyEvent): {
    correlations: Correlation[]
    late?: LateEvent
    confirmation?: RevokeConfirmation
  }
  counts(): ReplayCounts
  /** The ids of the first conflicting duplicates (at most 20), in the order they came. */
  conflictingIds(): readonly string[]
}

/** How many conflicting duplicates' ids replay keeps to name. */
const keepConflicts = 20

export type ReplayOptions = {
  /** Remember only the ids of the current event time (input sorted by time, then id). */
  sameTimeDuplicates?: boolean
}

export function createReplay(config: Config, options: ReplayOptions = {}): Replay {
  const correlator = createCorrelator(correlatorConfigOf(config))
  /**
   * Every id (input order), or the ids of the current event time after its first (time order), each with
   * its first event: a later copy is compared with it (conflicting-copies.ts) only when one comes.
   */
  const ids = new Map<string, NormalizedEvent | TimeOnlyEvent>()
  let idsTime = Number.NaN
  let idsTimeNs = Number.NaN
  /** The first event of the current event time, kept apart: most times hold one event, and a Set cleared for
   *  each new time (a fresh table every time) cost a tenth of the correlator's time in the replay bench. */
  let timeEvent: NormalizedEvent | TimeOnlyEvent | undefined
  let read = 0
  let duplicate = 0
  let confirmations = 0
  /** The ids of the duplicates that conflict with their first copy: the first `keepConflicts`, escaped. */
  const conflicts: string[] = []
  let conflictCount = 0
  /** What push() gives for an event that completes nothing without reaching the correlator. */
  const nothing = Object.freeze({ correlations: Object.freeze([]) as unknown as Correlation[] })

  const standIn = (event: Omit<NormalizedEvent, 'agent'>): TimeOnlyEvent | undefined => {
    const ignored = correlator.alwaysIgnored(event)
    return ignored && { id: event.id, time: event.time, time_ns: event.time_ns, ignored }
  }

  /** The first event seen with this event's id (it is noted when there is none). */
  const seen = (event: NormalizedEvent | TimeOnlyEvent): NormalizedEvent | TimeOnlyEvent | undefined => {
    if (options.sameTimeDuplicates && (event.time !== idsTime || event.time_ns !== idsTimeNs)) {
      idsTime = event.time
      idsTimeNs = event.time_ns
      timeEvent = event
      if (ids.size > 0) ids.clear()
      return undefined
    }
    if (event.id === timeEvent?.id) return timeEvent
    const first = ids.get(event.id)
    if (first !== undefined) return first
    ids.set(event.id, event)
    return undefined
  }

  const conflict = (id: string) => {
    conflictCount++
    if (conflicts.length < keepConflicts) conflicts.push(id)
  }

  const push = (event: NormalizedEvent | TimeOnlyEvent) => {
    read++
    const first = seen(event)
    if (first !== undefined) {
      duplicate++
      if (conflictingCopies(first, event)) conflict(event.id)
      return nothing
    }
    // A stand-in is told by its reason, read as a property: `'ignored' in event` over events of many
    // shapes took about 1.4 % of the correlator's instructions in replay (docs/replay-rounds.md).
    const ignored = (event as Partial<TimeOnlyEvent>).ignored
    if (ignored !== undefined) {
      correlator.pass(event.time, ignored)
      return nothing
    }
    const result = correlator.accept(event as NormalizedEvent)
    if (result.duplicate) duplicate++
    if (result.conflict) conflict(event.id)
    if (result.confirmation) confirmations++
    return result
  }

  const counts = (): ReplayCounts => {
    const s = correlator.stats()
    return {
      read,
      duplicate,
      late: s.late.edge + s.late.core,
      correlations: s.correlations,
      ignored: s.ignored,
      confirmations,
      overflow: s.overflow.agent_cap + s.overflow.memory_budget,
      duplicate_conflicts: conflictCount,
    }
  }

  return { standIn, push, counts, conflictingIds: () => conflicts }
}

/** The whole input at once: correlations in emission order, late events, and the summary counts. */
export function replayCorrelations(
  config: Config,
  events: Iterable<NormalizedEvent>,
): { correlations: Correlation[]; late: LateEvent[]; counts: ReplayCounts } {
  const replay = createReplay(config)
  const correlations: Correlation[] = []
  const late: LateEvent[] = []
  for (const event of events) {
    const result = replay.push(event)
    correlations.push(...result.correlations)
    if (result.late) late.push(result.late)
  }
  return { correlations, late, counts: replay.counts() }
}
