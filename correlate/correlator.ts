// The pure core of the join: normalized events in (bus order, one instance per partition), correlations
// out. No I/O, no clock: stream time comes from event times only, so the same input (and restored state)
// gives the same output bytes. Semantics: DESIGN.md "Correlation semantics", notes/correlation.md §3
// (K1 key, W1 window, T1 stream time, L1 lateness, S1 retention, D1 dedup, M1 many-to-many, E1 eager, I1 ids);
// per-rule windows are explained in window-bounds.ts.
import type { CoreFields, Correlation, EdgeFields, NormalizedEvent } from '../schemas/types.ts'
import { type BaselineStore, createBaselineStore, resourceKey } from './agent-baseline.ts'
import { createAgentWindows } from './agent-windows.ts'
import { judgeBaseline } from './baseline-verdict.ts'
import { type BaselineJudge, buildCorrelation } from './build-correlation.ts'
import { restoreEntries, serializeEntry } from './checkpoint-entry-slots.ts'
import { conflictsWithBuffered } from './conflicting-copies.ts'
import type {
  CorrelatorChanges,
  CorrelatorLists,
  CorrelatorMeta,
  CorrelatorState,
} from './correlator-state.ts'
import {
  type AcceptResult,
  type Correlator,
  type CorrelatorConfig,
  type CorrelatorOptions,
  type CorrelatorStats,
  type IgnoredReason,
  ignoredReasons,
} from './correlator-types.ts'
import type { AgentWindow, CoreDetail, EdgeDetail } from './entry-slots.ts'
import { createEventAdmission } from './event-admission.ts'
import { createDetailInterner } from './event-details.ts'
import { createIncidentGrouper } from './group-incidents.ts'
import { compileRules, createRuleMatcher } from './match-rules.ts'
import { createRevokeTracker } from './revoke-confirmations.ts'
import { isDenied, isNeverRoutine } from './score-correlation.ts'
import { createWindowBounds } from './window-bounds.ts'

/** The Falco-style rule name of the flood signal (floodSignal below): name it in a rule's edge filter. */
export const floodRuleName = 'nerve: Alert flood'

/** Ingest's summary of the alerts it folded over an agent's budget (ingest/agent-budget.ts). */
const isFoldSummary = (event: NormalizedEvent): boolean =>
  event.side === 'edge' && event.edge?.source === 'nerve' && event.edge.tags.includes('folded')

const noCorrelations = Object.freeze([]) as unknown as Correlation[]
const frozen = <T>(value: T): T => Object.freeze(value)
const ignoredResult = Object.fromEntries(
  ignoredReasons.map((r) => [r, frozen({ correlations: noCorrelations, ignored: r })]),
) as Record<IgnoredReason, AcceptResult>
const duplicateResult: AcceptResult = frozen({ correlations: noCorrelations, duplicate: true })
const conflictResult: AcceptResult = frozen({ correlations: noCorrelations, duplicate: true, conflict: true })
const bufferedResult: AcceptResult = frozen({ correlations: noCorrelations })
/** Incidents and revoke marks are swept when stream time has moved this far since the last sweep. */
const sweepEveryMs = 60_000
/** correlation.clock_tolerance's default: how far past its arrival an event may move stream time. */
export const defaultClockTolerance = 60_000

export function createCorrelator(
  config: CorrelatorConfig,
  restored?: CorrelatorState,
  options: CorrelatorOptions = {},
): Correlator {
  const rules = compileRules(config.rules, config.window)
  const matcher = createRuleMatcher(rules)
  const bounds = createWindowBounds(rules)
  let floodRules = 0
  for (const rule of rules)
    if (config.rules[rule.index]?.edge.rules?.includes(floodRuleName)) floodRules |= 1 << rule.index
  const details = createDetailInterner()
  const baseline: BaselineStore | undefined = config.baseline?.enabled
    ? createBaselineStore(config.baseline, restored?.baseline)
    : undefined
  const windows = createAgentWindows({
    maxPerAgentSide: config.max_events_per_agent,
    memoryBudgetBytes: config.memory_budget_bytes - (baseline?.config.memory_bytes ?? 0),
    trackChanges: options.trackChanges ?? false,
    onDetailReleased: details.forget,
  })
  const incidents = createIncidentGrouper(
    config.incident_gap,
    restored?.incidents,
    config.max_correlations_per_incident_rule,
    options.trackChanges ?? false,
  )
  const revokes = createRevokeTracker(config.self_identities, config.incident_gap, restored?.revoked)
  const stats: Omit<
    CorrelatorStats,
    | 'stream_time'
    | 'buffered'
    | 'buffered_bytes'
    | 'shared_bytes'
    | 'agents'
    | 'incidents'
    | 'revoked_targets'
    | 'overflow'
    | 'baseline'
  > = {
    accepted: { edge: 0, core: 0 },
    late: { edge: 0, core: 0 },
    duplicate: 0,
    conflicting_duplicate: 0,
    ignored: Object.fromEntries(ignoredReasons.map((r) => [r, 0])) as Record<IgnoredReason, number>,
    correlations: 0,
    suppressed: 0,
    floods: 0,
    collapsed: 0,
    dated_ahead: 0,
    evicted: 0,
  }
  let st: number | null = restored?.stream_time ?? null
  let seq = restored?.seq ?? 0
  let lastSweep: number | null = restored?.last_sweep ?? null
  const tolerance = config.clock_tolerance ?? defaultClockTolerance

  /**
   * T1 with arrival as a bound: an event moves stream time to its own time, but never past its arrival at
   * ingest (received_at, nerve's clock, carried as data) plus the clock tolerance. An item dated ahead (a
   * node whose clock runs fast, anything inside ingest.max_future_skew) is still buffered and matched at
   * its own time; it can no longer make the rest of its partition late. Replay has no arrival (0): time.
   */
  const movesTo = (event: NormalizedEvent): number => {
    if (!(event.received_at > 0) || event.time <= event.received_at + tolerance) return event.time
    stats.dated_ahead++
    return event.received_at + tolerance
  }

  const advance = (time: number) => {
    if (st !== null && time <= st) return
    st = time
    stats.evicted += windows.evictExpired(st)
    if (lastSweep === null || st - lastSweep >= sweepEveryMs) {
      lastSweep = st
      incidents.forgetBefore(st - bounds.maxRetention)
      revokes.forgetBefore(st - bounds.maxRetention)
      baseline?.forgetBefore(st - baseline.config.history)
    }
  }

  /**
   * What the baseline remembers of a call's resource (`service:target`, when the request named one), made
   * once per call detail: a principal's calls share their details (event-details.ts), so the baseline's
   * maps are looked up with one string whose hash V8 keeps, not a new one per call and per judgment, and
   * its recent calls share that string.
   */
  const resources = new WeakMap<CoreDetail, string>()
  const resourceOf = (detail: CoreDetail): string | undefined => {
    if (detail.target === undefined) return undefined
    let resource = resources.get(detail)
    if (resource === undefined) {
      resource = resourceKey(detail.action, detail.target)
      resources.set(detail, resource)
    }
    return resource
  }

  /** The baseline's word on a buffered core entry, judged as the pair forms (baseline-verdict.ts). */
  const judge: BaselineJudge | undefined =
    baseline &&
    ((agent, detail, time, includesSelf) =>
      judgeBaseline(baseline.config, baseline.get(agent), {
        time,
        action: detail.action,
        target: detail.target,
        denied: isDenied(detail.error_code),
        critical: isNeverRoutine(detail.action, detail.target),
        includesSelf,
        resource: resourceOf(detail),
      }))

  /**
   * M1/E1: every pair the newcomer completes, in buffer order, then rule order. `wasLast`: for an edge
   * entry just folded into, its latest time before the fold (NaN otherwise).
   */
  const probe = (x: number, xIsEdge: boolean, window: AgentWindow, wasLast = Number.NaN): Correlation[] => {
    let found: Correlation[] | undefined
    const s = windows.slots
    const xMask = s.mask[x] as number
    for (
      let other = xIsEdge ? window.coreHead : window.edgeHead;
      other !== -1;
      other = s.next[other] as number
    ) {
      const common = xMask & (s.mask[other] as number)
      if (common === 0) continue
      const e = xIsEdge ? x : other
      const c = xIsEdge ? other : x
      for (const rule of rules) {
        if ((common & (1 << rule.index)) === 0) continue
        const eTime = s.time[e] as number
        const cTime = s.time[c] as number
        if (!bounds.inWindow(rule.index, eTime, s.last[e] as number, cTime)) continue
        // After a fold, only what the entry's windows did not reach before.
        if (!Number.isNaN(wasLast) && bounds.inWindow(rule.index, eTime, wasLast, cTime)) continue
        // A core entry met by a newer edge event is in the baseline already; a newcomer core is not yet.
        const correlation = buildCorrelation(rule, s, e, c, incidents, judge, xIsEdge)
        if (correlation === null) {
          stats.suppressed++
          continue
        }
        found ??= []
        found.push(correlation)
      }
    }
    return found ?? noCorrelations
  }

  /**
   * The pairs a fold adds: cores the folded entry's windows reach now (its latest time moved from
   * `previous`) and did not before. Pairs it reached before were emitted then, or when the core came.
   */
  const probeFolded = (e: number, window: AgentWindow, previous: number): Correlation[] =>
    windows.slots.last[e] === previous ? noCorrelations : probe(e, true, window, previous)

  const late = (event: NormalizedEvent, mask: number): AcceptResult => {
    const streamTime = st as number
    const lag = bounds.pastBound(streamTime, event.time, event.side, mask)
    stats.late[event.side]++
    return {
      correlations: noCorrelations,
      late: {
        event,
        stream_time: streamTime,
        lag_ms: lag,
        reason: `${event.side} event arrived ${lag} ms after its window and grace closed for every rule that could use it`,
      },
    }
  }

  const { usableMask, alwaysIgnored } = createEventAdmission(matcher, revokes)

  const pass = (time: number, reason: IgnoredReason) => {
    stats.ignored[reason]++
    if (reason !== 'internal') advance(time)
  }

  /**
   * A flood of alerts is itself a signal rules can use: when an agent's alerts first go over the per-agent
   * cap, an edge entry `nerve: Alert flood` (priority warning, source nerve) joins its window at the time of
   * the alert that did it, with an id derived from that alert's, and is matched by the rules that name it
   * in their edge filter (never by a catch-all filter: it would pair the flood with every call).
   */
  const floodSignal = (
    event: NormalizedEvent,
    windowOf: AgentWindow | (() => AgentWindow),
    lag: number,
    output = `Alert flood: "${(event.edge as EdgeFields).rule}" and others went over the per-agent cap of ${config.max_events_per_agent}`,
  ): Correlation[] => {
    const edge = event.edge as EdgeFields
    const fields: EdgeFields = {
      rule: floodRuleName,
      priority: 'warning',
      source: 'nerve',
      hostname: edge.hostname,
      tags: ['nerve', 'flood'],
      output,
      output_fields: {},
      internal: false,
    }
    const mask = matcher.edgeMask(fields) & floodRules
    const onTime = mask === 0 || st === null ? mask : bounds.onTime(st, event.time, 'edge', mask)
    const id = `flood-${event.id}`
    if (onTime === 0 || windows.has(id)) return noCorrelations
    const window = typeof windowOf === 'function' ? windowOf() : windowOf
    const slot = windows.insert(
      windows.who(window, event.agent.resolved_by, event.identity),
      details.edge(fields),
      id,
      event.time,
      onTime,
      event.time + bounds.retention(onTime),
      seq++,
      lag,
      fields.output,
    )
    const found = probe(slot, true, window)
    windows.settle(slot)
    return found
  }

  /**
   * Ingest's summary of the alerts it folded over an agent's budget (source nerve, tags nerve and folded:
   * ingest/agent-budget.ts) is an edge event like any, matched by the rules that name its Falco rule, and
   * also a flood: the rules that name `nerve: Alert flood` get the flood signal at its time.
   */
  const accept = (event: NormalizedEvent): AcceptResult => {
    const result = acceptOne(event)
    if (floodRules === 0 || !isFoldSummary(event)) return result
    if (result.late || result.duplicate || (result.ignored && result.ignored !== 'no_rule')) return result
    const lag = st === null ? 0 : Math.max(0, st - event.time)
    const output = `Alert flood: ${(event.edge as EdgeFields).output}`
    const signal = floodSignal(event, () => windows.window(event.agent.id), lag, output)
    if (signal.length === 0) return result
    stats.correlations += signal.length
    return { ...result, correlations: [...result.correlations, ...signal] }
  }

  const acceptOne = (event: NormalizedEvent): AcceptResult => {
    const key = event.agent?.id
    if (!key) return ignoredResult.no_agent
    if (!Number.isFinite(event.time)) return ignoredResult.invalid_time
    const mask = usableMask(event)
    if (typeof mask === 'string') {
      stats.ignored[mask]++
      if (mask !== 'internal') advance(movesTo(event))
      return ignoredResult[mask]
    }
    const confirmation = event.side === 'core' ? revokes.confirmation(event) : null
    if (confirmation) {
      stats.ignored.revoke_confirmation++
      advance(movesTo(event))
      return { correlations: noCorrelations, ignored: 'revoke_confirmation', confirmation }
    }
    if (mask === 0) {
      stats.ignored.no_rule++
      advance(movesTo(event))
      return ignoredResult.no_rule
    }
    if (windows.has(event.id)) {
      stats.duplicate++
      const slot = windows.found()
      const s = windows.slots
      if (
        !conflictsWithBuffered(event, s.time[slot] as number, s.details[slot] ?? null, s.whos[slot] ?? null)
      )
        return duplicateResult
      stats.conflicting_duplicate++
      return conflictResult
    }
    const onTime = st === null ? mask : bounds.onTime(st, event.time, event.side, mask)
    if (onTime === 0) return late(event, mask)
    const lag = st === null ? 0 : Math.max(0, st - event.time)
    advance(movesTo(event))
    const window = windows.window(key)
    const isEdge = event.side === 'edge'
    const who = windows.who(window, event.agent.resolved_by, event.identity)
    const detail = isEdge ? details.edge(event.edge as EdgeFields) : details.core(event.core as CoreFields)
    if (isEdge) {
      const output = (event.edge as EdgeFields).output
      const target = windows.foldTarget(
        who,
        detail as EdgeDetail,
        onTime,
        event.time,
        output,
        bounds.foldSpan(onTime),
      )
      if (target !== -1) {
        const previous = windows.fold(target, event.time, event.time + bounds.retention(onTime))
        const correlations = probeFolded(target, window, previous)
        stats.collapsed++
        stats.accepted.edge++
        stats.correlations += correlations.length
        return correlations === noCorrelations ? bufferedResult : { correlations }
      }
    }
    const slot = windows.insert(
      who,
      detail,
      event.id,
      event.time,
      onTime,
      event.time + bounds.retention(onTime),
      seq++,
      lag,
      isEdge ? (event.edge as EdgeFields).output : '',
    )
    let correlations = probe(slot, isEdge, window)
    const flood = windows.settle(slot)
    if (baseline && !isEdge) {
      const core = detail as CoreDetail
      baseline.observe(key, event.time, core.action, resourceOf(core))
    }
    stats.accepted[event.side]++
    if (flood) {
      stats.floods++
      if (isEdge && floodRules !== 0) {
        const signal = floodSignal(event, window, lag)
        if (signal.length > 0) correlations = [...correlations, ...signal]
      }
      stats.correlations += correlations.length
      return { correlations, flood }
    }
    stats.correlations += correlations.length
    return correlations === noCorrelations ? bufferedResult : { correlations }
  }

  const meta = (): CorrelatorMeta => ({ version: 1, stream_time: st, seq, last_sweep: lastSweep })
  const lists = (): CorrelatorLists => ({ incidents: incidents.snapshot(), revoked: revokes.snapshot() })

  const snapshot = (): CorrelatorState => {
    const state: CorrelatorState = {
      ...meta(),
      ...lists(),
      entries: windows.liveSlots().map((slot) => serializeEntry(windows, rules, slot)),
    }
    if (baseline && baseline.agents() > 0) state.baseline = baseline.snapshot()
    return state
  }

  /** The revision of the revoke marks at the last takeChanges(). */
  let takenRevoked = revokes.revision()
  const takeChanges = (): CorrelatorChanges => {
    const { added, removed } = windows.takeChanges()
    const changes: CorrelatorChanges = {
      meta: meta(),
      added: added.map((slot) => serializeEntry(windows, rules, slot)),
      removed,
    }
    const changedIncidents = incidents.takeChanged()
    if (changedIncidents.size > 0) {
      changes.incidents = [...changedIncidents].map(([agent, list]) => ({ agent, incidents: list }))
    }
    if (revokes.revision() !== takenRevoked) {
      changes.revoked = revokes.snapshot()
      takenRevoked = revokes.revision()
    }
    const learned = baseline?.takeChanges()
    if (learned && learned.upserted.length + learned.removed.length > 0) changes.baseline = learned
    return changes
  }

  if (restored) restoreEntries(windows, details, rules, restored.entries)

  return {
    accept,
    streamTime: () => st,
    stats: () => ({
      stream_time: st,
      buffered: windows.buffered(),
      buffered_bytes: windows.bytes(),
      shared_bytes: details.bytes(),
      agents: windows.agents.size,
      incidents: incidents.size(),
      revoked_targets: revokes.size(),
      overflow: { ...windows.overflow },
      ...stats,
      accepted: { ...stats.accepted },
      late: { ...stats.late },
      ignored: { ...stats.ignored },
      baseline: {
        agents: baseline?.agents() ?? 0,
        bytes: baseline?.bytes() ?? 0,
        evicted: baseline?.evicted() ?? 0,
      },
    }),
    snapshot,
    takeChanges,
    alwaysIgnored,
    pass,
    rules,
  }
}
