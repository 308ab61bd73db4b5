// One item dated ahead must not blind its partition. ingest.max_future_skew (1 h) accepts an alert dated
// +50 min (a node whose clock runs fast, or anything a sender dates inside the skew); if it moved stream
// time to its own time, every real-time event of the other workloads on its partition would be late for
// 50 min (before + grace is 22 min, after + grace 35 min with the defaults). An event moves stream time only
// to its arrival at ingest (received_at, nerve's clock) plus correlation.clock_tolerance. Events: the
// Falco shell alert and Stratus Red Team's AttachRolePolicy (sample-events.ts names the sources).
import { describe, expect, it } from 'vitest'
import { createCorrelator, defaultClockTolerance } from '../../../correlate/correlator.ts'
import { correlatorConfigOf } from '../../../correlate/correlator-config.ts'
import type { CorrelatorConfig } from '../../../correlate/correlator-types.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

const min = 60_000
/** Wall clock of the run: when ingest received the skewed alert. */
const now = Date.UTC(2026, 11, 7, 18, 0)
const config: CorrelatorConfig = correlatorConfigOf(loadConfig())

const arriving = (event: NormalizedEvent, receivedAt: number): NormalizedEvent => ({
  ...event,
  received_at: receivedAt,
})

/** Workload A's alert, dated 50 min ahead of the time ingest received it. */
const skewed = arriving(
  edgeEvent({ id: 'skewed-shell', agent: 'skew/node-agent0', time: now + 50 * min }),
  now,
)

/** Workload B, honest: a shell a minute ago, its IAM write 30 s ago, delivered by CloudTrail 5 min later. */
function victim() {
  const shell = arriving(
    edgeEvent({ id: 'victim-shell', agent: 'team/runner0', time: now - min }),
    now + 1_000,
  )
  const attach = arriving(
    coreEvent({ id: 'victim-attach', agent: 'team/runner0', time: now - 30_000 }),
    now + 5 * min,
  )
  return { shell, attach }
}

describe('an event dated ahead of its arrival', () => {
  it('does not make the in-window events of another workload on its partition late', () => {
    const c = createCorrelator(config)
    c.accept(skewed)
    expect(c.streamTime()).toBe(now + defaultClockTolerance)
    const { shell, attach } = victim()
    expect(c.accept(shell).late).toBeUndefined()
    const result = c.accept(attach)
    expect(result.late).toBeUndefined()
    expect(result.correlations.map((x) => [x.agent.id, x.edge.event_id, x.core.event_id])).toEqual([
      ['team/runner0', 'victim-shell', 'victim-attach'],
    ])
    expect(c.stats()).toMatchObject({ late: { edge: 0, core: 0 }, dated_ahead: 1 })
  })

  it('is still buffered and matched at its own time', () => {
    const c = createCorrelator(config)
    c.accept(skewed)
    const call = arriving(
      coreEvent({ id: 'skew-attach', agent: 'skew/node-agent0', time: now + 51 * min }),
      now + 2 * min,
    )
    expect(c.accept(call).correlations.map((x) => x.edge.event_id)).toEqual(['skewed-shell'])
    expect(c.streamTime()).toBe(now + 2 * min + defaultClockTolerance)
  })

  it('keeps the bound across a restart: the checkpoint holds the stream time its arrival allowed', () => {
    const c = createCorrelator(config)
    c.accept(skewed)
    const restored = createCorrelator(config, c.snapshot())
    expect(restored.streamTime()).toBe(now + defaultClockTolerance)
    const { shell, attach } = victim()
    restored.accept(shell)
    expect(restored.accept(attach).correlations).toHaveLength(1)
  })

  it('moves stream time by its own time when that is within the tolerance, as honest clocks do', () => {
    const c = createCorrelator({ ...config, clock_tolerance: 5 * min })
    const fast = arriving(edgeEvent({ id: 'fast-node', agent: 'team/runner1', time: now + 3 * min }), now)
    c.accept(fast)
    expect(c.streamTime()).toBe(now + 3 * min)
    c.accept(skewed)
    expect(c.streamTime()).toBe(now + 5 * min)
  })

  it('in replay, where no event has an arrival time, moves stream time by event time as before', () => {
    const c = createCorrelator(config)
    c.accept(arriving(skewed, 0))
    expect(c.streamTime()).toBe(now + 50 * min)
    expect(c.accept(arriving(victim().attach, 0)).late).toBeDefined()
  })
})
