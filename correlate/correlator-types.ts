// What the correlator takes, answers and counts (correlator.ts builds it).
import type { LateEvent } from '../bus/topics.ts'
import type { Correlation, NormalizedEvent, RuleConfig, Side, WindowConfig } from '../schemas/types.ts'
import type { BaselineConfig } from './agent-baseline.ts'
import type { OverflowReason } from './agent-windows.ts'
import type { CorrelatorChanges, CorrelatorState } from './correlator-state.ts'
import type { CompiledRule } from './match-rules.ts'
import type { RevokeConfirmation } from './revoke-confirmations.ts'

export type CorrelatorConfig = {
  rules: readonly RuleConfig[]
  window: WindowConfig
  max_events_per_agent: number
  memory_budget_bytes: number
  incident_gap: number
  /**
   * How far past its `received_at` (nerve's clock at ingest: data here, not a clock read) an event may move
   * stream time (default 1 min); events without one (replay: 0) move it by their time alone.
   */
  clock_tolerance?: number
  /** Correlations kept per rule in one incident; the rest are counted as suppressed (default 100). */
  max_correlations_per_incident_rule?: number
  self_identities: readonly string[]
  /** The behavioural baseline; absent or disabled: scores ignore history. Its bytes come out of the budget. */
  baseline?: BaselineConfig
}

/** Why an event was not considered for matching (bounded: used as a metric label). */
export const ignoredReasons = [
  'no_agent',
  'invalid_time',
  'internal',
  'no_rule',
  'self_action',
  'revoke_action',
  'revoke_confirmation',
] as const
export type IgnoredReason = (typeof ignoredReasons)[number]

export type AcceptResult = {
  correlations: Correlation[]
  late?: LateEvent
  duplicate?: true
  /** A duplicate that differs from the first copy in what matters (conflicting-copies.ts). */
  conflict?: true
  ignored?: IgnoredReason
  confirmation?: RevokeConfirmation
  /** This event put its agent over the per-agent cap: its repeats are being shed (a flood began). */
  flood?: true
}

export type CorrelatorStats = {
  stream_time: number | null
  buffered: number
  buffered_bytes: number
  /**
   * Heap bytes of the shared values (rule names, tags, actions, regions…) the buffered details hold,
   * released with them; not part of `buffered_bytes` nor of the memory budget it is held to.
   */
  shared_bytes: number
  agents: number
  incidents: number
  revoked_targets: number
  overflow: Record<OverflowReason, number>
  accepted: Record<Side, number>
  late: Record<Side, number>
  duplicate: number
  /** Of the duplicates, those that differ from the first copy in what matters (conflicting-copies.ts). */
  conflicting_duplicate: number
  ignored: Record<IgnoredReason, number>
  correlations: number
  /** Correlations over their incident's per-rule bound: counted on the incident, not emitted. */
  suppressed: number
  /** Times an agent side went over the per-agent cap (a flood began). */
  floods: number
  /** Alerts folded into an earlier identical one (an entry with a count) rather than buffered on their own. */
  collapsed: number
  /** Events dated more than clock_tolerance ahead of their arrival: stream time moved only to arrival + it. */
  dated_ahead: number
  evicted: number
  /** The behavioural baseline: agents kept, estimated bytes, agents forgotten for its memory share. */
  baseline: { agents: number; bytes: number; evicted: number }
}

export type CorrelatorOptions = {
  /** Record added and removed buffer entries for takeChanges() (the stage's incremental checkpoints). */
  trackChanges?: boolean
}

export type Correlator = {
  accept(event: NormalizedEvent): AcceptResult
  /** Stream time before the next event, null before the first. */
  streamTime(): number | null
  stats(): CorrelatorStats
  snapshot(): CorrelatorState
  /** Needs options.trackChanges. */
  takeChanges(): CorrelatorChanges
  /**
   * Why accept() will ignore the event whatever the state (its one effect is then on stream time, and not
   * even that when internal), or undefined when it may matter. Replay holds a time-only stand-in for these.
   */
  alwaysIgnored(event: Omit<NormalizedEvent, 'agent'>): IgnoredReason | undefined
  /** What accept() does with an event alwaysIgnored() named: counts it and moves stream time. */
  pass(time: number, reason: IgnoredReason): void
  rules: readonly CompiledRule[]
}
