// What the correlate stage exports: the four component counters (component="correlator") and
// nerve_correlate_* series: buffered events, bytes, agents, incidents (gauges, summed over the partitions
// this instance owns); late, duplicate, ignored and overflow counts; stream-time lag at arrival per side
// (how far CloudTrail runs behind Falco: size `grace` from its upper quantiles).
import type { ErrorCode } from '../runtime/errors.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { Side } from '../schemas/types.ts'
import type { Correlator, CorrelatorStats } from './correlator-types.ts'

const lagBuckets = [0, 1, 5, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200]

export function createCorrelateTelemetry(metrics: Metrics) {
  const component = metrics.component('correlator')
  const buffered = metrics.gauge('nerve_correlate_buffered_events', 'Events held in correlation windows.')
  const bytes = metrics.gauge('nerve_correlate_buffered_bytes', 'Estimated heap bytes of buffered events.')
  const sharedBytes = metrics.gauge(
    'nerve_correlate_shared_bytes',
    'Estimated heap bytes of the shared values (rule names, tags…) buffered events hold.',
  )
  const agents = metrics.gauge('nerve_correlate_agents', 'Agents with buffered events.')
  const incidents = metrics.gauge(
    'nerve_correlate_open_incidents',
    'Incidents still open to new correlations.',
  )
  const baselineBytes = metrics.gauge(
    'nerve_correlate_baseline_bytes',
    'Estimated heap bytes of the behavioural baseline (its share of the memory budget).',
  )
  const baselineAgents = metrics.gauge('nerve_correlate_baseline_agents', 'Agents the baseline remembers.')
  const baselineShed = metrics.counter(
    'nerve_correlate_baseline_agents_shed_total',
    'Agents the baseline forgot to stay within its memory share (their history starts over).',
  )
  const overflow = metrics.counter(
    'nerve_correlate_overflow_events_total',
    'Buffered events shed by the per-agent cap or the memory budget (pairs may be lost).',
    ['reason'],
  )
  const late = metrics.counter(
    'nerve_correlate_late_events_total',
    'Events that missed their window and grace.',
    ['side'],
  )
  const duplicates = metrics.counter(
    'nerve_correlate_duplicate_events_total',
    'Redelivered event ids ignored.',
  )
  const conflicting = metrics.counter(
    'nerve_correlate_conflicting_duplicates_total',
    'Redelivered event ids whose copy differs from the first in time, action, principal, access key, error code, named resource or agent: the first was kept; a forged copy may have pre-empted the real record.',
  )
  const ignored = metrics.counter('nerve_correlate_ignored_events_total', 'Events no rule may use, by why.', [
    'reason',
  ])
  const correlations = metrics.counter('nerve_correlate_correlations_total', 'Correlations emitted.')
  const floods = metrics.counter(
    'nerve_correlate_floods_total',
    'Times an agent went over its per-agent cap (a flood of its own alerts or calls began).',
  )
  const collapsed = metrics.counter(
    'nerve_correlate_collapsed_events_total',
    'Alerts folded into an earlier identical one of their agent (an entry with a count), not buffered on their own.',
  )
  const suppressed = metrics.counter(
    'nerve_correlate_suppressed_correlations_total',
    'Correlations over their incident per-rule bound: counted on the incident, not emitted.',
  )
  const datedAhead = metrics.counter(
    'nerve_correlate_dated_ahead_events_total',
    'Events dated more than correlation.clock_tolerance ahead of their arrival: matched at their own time, they moved stream time only to their arrival plus the tolerance.',
  )
  const skipped = metrics.counter(
    'nerve_correlate_replayed_records_skipped_total',
    'Redelivered records already in a checkpoint.',
  )
  const lag = metrics.histogram(
    'nerve_correlate_stream_lag_seconds',
    'Stream time minus event time at arrival, per side (CloudTrail delivery lag behind Falco).',
    lagBuckets,
    ['side'],
  )
  for (const side of ['edge', 'core']) late.inc({ side }, 0)
  for (const reason of ['agent_cap', 'memory_budget']) overflow.inc({ reason }, 0)

  const gauges = (partitions: ReadonlyMap<number, { correlator: Correlator }>) => {
    let b = 0
    let by = 0
    let sb = 0
    let a = 0
    let i = 0
    let bb = 0
    let ba = 0
    for (const { correlator } of partitions.values()) {
      const s = correlator.stats()
      b += s.buffered
      by += s.buffered_bytes
      sb += s.shared_bytes
      a += s.agents
      i += s.incidents
      bb += s.baseline.bytes
      ba += s.baseline.agents
    }
    baselineBytes.set(bb)
    baselineAgents.set(ba)
    buffered.set(b)
    bytes.set(by)
    sharedBytes.set(sb)
    agents.set(a)
    incidents.set(i)
  }

  /** Counters move by what each touched partition's correlator counted during the batch. */
  const batch = (
    received: number,
    sent: number,
    lateCount: number,
    touched: ReadonlyMap<number, { state: { correlator: Correlator }; before: CorrelatorStats }>,
    partitions: ReadonlyMap<number, { correlator: Correlator }>,
  ) => {
    component.received(received)
    component.sent(sent)
    correlations.inc(sent)
    for (const { state, before } of touched.values()) {
      const after = state.correlator.stats()
      suppressed.inc(after.suppressed - before.suppressed)
      floods.inc(after.floods - before.floods)
      collapsed.inc(after.collapsed - before.collapsed)
      datedAhead.inc(after.dated_ahead - before.dated_ahead)
      const dup = after.duplicate - before.duplicate
      duplicates.inc(dup)
      conflicting.inc(after.conflicting_duplicate - before.conflicting_duplicate)
      if (dup > 0) component.discarded(dup, 'duplicate')
      for (const side of ['edge', 'core'] as const) late.inc({ side }, after.late[side] - before.late[side])
      for (const reason of ['agent_cap', 'memory_budget'] as const) {
        const n = after.overflow[reason] - before.overflow[reason]
        overflow.inc({ reason }, n)
        if (n > 0) component.discarded(n, `overflow_${reason}`)
      }
      baselineShed.inc(after.baseline.evicted - before.baseline.evicted)
      for (const reason of Object.keys(after.ignored) as (keyof CorrelatorStats['ignored'])[]) {
        const n = after.ignored[reason] - before.ignored[reason]
        if (n > 0) ignored.inc({ reason }, n)
      }
    }
    if (lateCount > 0) component.discarded(lateCount, 'late')
    gauges(partitions)
  }

  return {
    batch,
    gauges,
    lag: (side: Side, ms: number) => lag.observe({ side }, Math.max(0, ms) / 1000),
    skipped: (n: number) => skipped.inc(n),
    error: (code: ErrorCode) => component.error(code, 'correlate'),
  }
}
