// What `nerve replay` needs from the correlator: ordered NormalizedEvents in, correlations and counts out,
// deterministically (one stream time over the whole input: replay is one partition). Every repeated event
// id is counted as a duplicate and skipped (the whole input is finite, so all ids are remembered).
import type { LateEvent } from '../bus/topics.ts'
import type { Config, Correlation, NormalizedEvent } from '../schemas/types.ts'
import { createCorrelator, type IgnoredReason } from './correlator.ts'
import { correlatorConfigOf } from './correlator-config.ts'
import type { RevokeConfirmation } from './revoke-confirmations.ts'

export type ReplayCounts = {
  read: number
  duplicate: number
  late: number
  correlations: number
  ignored: Record<IgnoredReason, number>
  confirmations: number
  overflow: number
}

export type Replay = {
  /** Feeds one event; returns the correlations it completed, in emission order. */
  push(event: NormalizedEvent): {
    correlations: Correlation[]
    late?: LateEvent
    confirmation?: RevokeConfirmation
  }
  counts(): ReplayCounts
}

export function createReplay(config: Config): Replay {
  const correlator = createCorrelator(correlatorConfigOf(config))
  const ids = new Set<string>()
  let read = 0
  let duplicate = 0
  let confirmations = 0

  const push = (event: NormalizedEvent) => {
    read++
    if (ids.has(event.id)) {
      duplicate++
      return { correlations: [] }
    }
    ids.add(event.id)
    const result = correlator.accept(event)
    if (result.duplicate) duplicate++
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
    }
  }

  return { push, counts }
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
