// Revokes that went ahead (sent or dry-run) leave the outbox once nothing can need them: decided longer ago
// than the rate-limit periods and the bus's retention (no redelivery can meet them), every delivery done
// (none still retrying) and every outcome on the bus. The incident's rounds outlive them, so a later
// revoke of an incident kept alive never reuses the key of a forgotten one, after a restart too.
import { afterEach, describe, expect, it } from 'vitest'
import { type DecisionEntry, openRevokeOutbox } from '../../../sinks/revoke-outbox.ts'
import { revokeDecisionId } from '../../../sinks/revoke-policy.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { dispatcherOnAClock, hour, t0 } from './dispatcher-on-a-clock.ts'

const open: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close()
})

const target = 'https://hooks.example/revoke'
/** A revoke of incident inc-n by correlation cn, decided at `time`, sent (body) or dry-run. */
const revoke = (n: number, time: number, status: 'pending' | 'dry_run' = 'pending'): DecisionEntry => ({
  correlation_id: `c${n}`,
  decision_id: revokeDecisionId(`inc-${n}`),
  incident_id: `inc-${n}`,
  agent_id: 'data-cleaner',
  status,
  reason: status === 'pending' ? 'policy_allowed' : 'dry_run',
  time,
  targets: status === 'pending' ? [target] : [],
  ...(status === 'pending' ? { body: `{"n":${n}}` } : {}),
})

describe('revoke outbox retention of revokes that went ahead', () => {
  it('forgets a delivered revoke past the horizon; keeps one inside it, one still retrying, one not on the bus', () => {
    const outbox = openRevokeOutbox(tempDir('nerve-revoke-retention'))
    open.push(outbox)
    const deliveries = outbox.recordDecisions([
      revoke(1, t0),
      revoke(2, t0),
      revoke(3, t0, 'dry_run'),
      revoke(4, t0 + 5 * hour),
    ])
    const [sent, retrying, inside] = deliveries
    const outcome = (d: typeof sent, status: 'sent' | 'pending') => ({
      decision_id: d?.decision_id ?? '',
      time: t0 + 1000,
      correlation_id: d?.correlation_id ?? '',
      incident_id: d?.incident_id ?? '',
      agent_id: 'data-cleaner',
      status,
      target,
      reason: status === 'sent' ? 'delivered' : 'http_503',
      attempts: 1,
    })
    if (!sent || !retrying || !inside) throw new Error('three deliveries expected')
    outbox.updateDelivery(sent, { state: 'sent', attempts: 1, next_attempt_at: t0 }, outcome(sent, 'sent'))
    outbox.updateDelivery(
      retrying,
      { state: 'pending', attempts: 1, next_attempt_at: t0 + 2 * hour },
      outcome(retrying, 'pending'),
    )
    outbox.updateDelivery(
      inside,
      { state: 'sent', attempts: 1, next_attempt_at: t0 },
      outcome(inside, 'sent'),
    )
    // Nothing is on the bus yet: nothing goes.
    expect(outbox.forget(t0 + 3 * hour, 100)).toEqual({ decisions: 0, deliveries: 0, outcomes: 0 })
    outbox.markPublished(outbox.unpublishedOutcomes(100).through)
    // c1 (sent, two outcomes) and c3 (dry-run) go; c2 is still retrying, c4 is inside the horizon.
    expect(outbox.forget(t0 + 3 * hour, 100)).toEqual({ decisions: 2, deliveries: 1, outcomes: 3 })
    expect(outbox.decided(['c1', 'c2', 'c3', 'c4'])).toEqual(new Set(['c2', 'c4']))
    expect(outbox.pendingDeliveries().map((d) => d.correlation_id)).toEqual(['c2'])
    expect(outbox.pastRevokes().map((r) => r.incident_id)).toEqual(['inc-2', 'inc-4'])
    expect(outbox.forgottenRevokes()).toEqual([
      { incident_id: 'inc-1', time: t0, rounds: 1 },
      { incident_id: 'inc-3', time: t0, rounds: 1 },
    ])
  })

  it('keeps the rounds of a forgotten revoke: the incident, still alive after a restart, revokes under a new key', async () => {
    const dataDir = tempDir('nerve-revoke-retention')
    const start = (at: number) => dispatcherOnAClock(dataDir, at, { open, redelivery: 2 * hour })
    const first = start(t0)
    await first.d.handle([makeCorrelation(1, { incident: { id: 'inc-long' } })])
    await waitFor(() => first.outcomes().length === 1)
    // Three hours on, another incident's revoke is written, and the first one is forgotten with it.
    first.clock.t = t0 + 3 * hour
    await first.d.handle([makeCorrelation(2, { incident: { id: 'inc-other' } })])
    await waitFor(() => first.outcomes().length === 2)
    expect(
      await first.rt.metricValue('nerve_revoke_outbox_retention_deleted_rows_total', { table: 'decisions' }),
    ).toBe(1)
    await first.d.close()

    // After a restart, inc-long is still alive (its agent kept it open) and due for its next round.
    const again = start(t0 + 4 * hour + 1000)
    const later = makeCorrelation(3, { incident: { id: 'inc-long' } })
    // The bus redelivers inc-other's correlation too (within its retention): decided once only.
    await again.d.handle([later, makeCorrelation(2, { incident: { id: 'inc-other' } })])
    await waitFor(() => again.outcomes().length === 1)
    const [next] = again.outcomes()
    expect(next).toMatchObject({ status: 'dry_run', incident_id: 'inc-long', correlation_id: later.id })
    expect(next?.decision_id).toBe(revokeDecisionId('inc-long', later.id))
    expect(next?.decision_id).not.toBe(revokeDecisionId('inc-long'))
  })
})
