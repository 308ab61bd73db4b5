// The revoke outbox keeps a row for every correlation a rate limit holds back, and the watched agent can
// make such correlations without end (under new identities too). Nothing but a redelivery's duplicate check
// reads them once their outcome is on the bus, so they go past a horizon: the rate-limit periods and the
// bus's retention. Revokes go past it too, once delivered (revoke-outbox-revoke-retention.test.ts).

import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import type { Correlation } from '../../../schemas/types.ts'
import { type DecisionEntry, forgettableSql, openRevokeOutbox } from '../../../sinks/revoke-outbox.ts'
import { revokeDecisionId } from '../../../sinks/revoke-policy.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { dispatcherOnAClock, hour, t0 } from './dispatcher-on-a-clock.ts'

const open: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close()
})

/** A dispatcher on the clock whose bus keeps 2 hours. */
const dispatcher = (dataDir: string, at: number) =>
  dispatcherOnAClock(dataDir, at, { open, redelivery: 2 * hour })

/** Hour `h`: the agent's first correlation is revoked, the ten after it (new incidents each) are held back. */
const hourOfTheAgent = (h: number): Correlation[] =>
  Array.from({ length: 11 }, (_, i) => makeCorrelation(100 * h + i, { incident: { id: `inc-${h}-${i}` } }))

/** The outbox's rows, read beside the dispatcher. */
function rows(dataDir: string) {
  const db = new Database(join(dataDir, 'revoke-outbox.sqlite'), { readonly: true })
  try {
    const decisions = db.prepare('SELECT status, time FROM decisions').all() as {
      status: string
      time: number
    }[]
    const outcomes = (db.prepare('SELECT COUNT(*) AS n FROM outcomes').get() as { n: number }).n
    return { decisions, outcomes }
  } finally {
    db.close()
  }
}

/** Thirty hours of the agent, each hour's outcomes on the bus before the next. */
async function thirtyHours(x: ReturnType<typeof dispatcher>) {
  for (let h = 0; h < 30; h++) {
    x.clock.t = t0 + h * hour
    await x.d.handle(hourOfTheAgent(h))
    await waitFor(() => x.published() === 11 * (h + 1))
  }
}

describe('revoke outbox retention', () => {
  it('forgets the held-back decisions and the revokes past the horizon', async () => {
    const dataDir = tempDir('nerve-revoke-retention')
    const x = dispatcher(dataDir, t0)
    await thirtyHours(x)
    expect(await x.count('dry_run', 'dry_run')).toBe(30)
    expect(await x.count('suppressed', 'rate_limited_agent')).toBe(300)
    const { decisions, outcomes } = rows(dataDir)
    // Of the 30 revokes and 300 held back, those of the last two hours (the bus's retention) only.
    expect(decisions.filter((r) => r.status === 'dry_run')).toHaveLength(2)
    const held = decisions.filter((r) => r.status === 'suppressed')
    expect(held).toHaveLength(20)
    expect(Math.min(...decisions.map((r) => r.time))).toBe(t0 + 28 * hour)
    expect(outcomes).toBe(22)
    const deleted = (table: string) =>
      x.rt.metricValue('nerve_revoke_outbox_retention_deleted_rows_total', { table })
    expect([await deleted('decisions'), await deleted('outcomes')]).toEqual([308, 308])
  })

  it('still finds what a redelivery can meet, and after a restart decides no revoke twice', async () => {
    const dataDir = tempDir('nerve-revoke-retention')
    const first = dispatcher(dataDir, t0)
    await thirtyHours(first)
    await first.d.close()

    const again = dispatcher(dataDir, t0 + 29 * hour + 1)
    // The bus delivers again the last two hours' batches, revokes included: all within its retention.
    await again.d.handle([...hourOfTheAgent(28), ...hourOfTheAgent(29)])
    expect(await again.count('dry_run', 'dry_run')).toBe(0)
    expect(await again.count('suppressed', 'rate_limited_agent')).toBe(0)
    expect(rows(dataDir).decisions).toHaveLength(22)
  })

  it('never gives a later outcome of an incident the id of a forgotten one', async () => {
    const x = dispatcher(tempDir('nerve-revoke-retention'), t0)
    // inc-b is held back at first, forgotten four hours on (with inc-a's revoke), then revoked (the agent
    // kept it alive).
    await x.d.handle([
      makeCorrelation(1, { incident: { id: 'inc-a' } }),
      makeCorrelation(2, { incident: { id: 'inc-b' } }),
    ])
    await waitFor(() => x.published() === 2)
    x.clock.t = t0 + 4 * hour
    await x.d.handle([
      makeCorrelation(3, { incident: { id: 'inc-b' } }),
      makeCorrelation(4, { incident: { id: 'inc-c' } }),
    ])
    await waitFor(() => x.published() === 4)
    expect(
      await x.rt.metricValue('nerve_revoke_outbox_retention_deleted_rows_total', { table: 'decisions' }),
    ).toBe(2)
    const outcomes = x.outcomes().map((o) => `${o.status}:${o.incident_id}:${o.id}`)
    expect(new Set(outcomes.map((o) => o.split(':').slice(2).join(':'))).size).toBe(4)
    expect(outcomes.filter((o) => o.includes(`inc-b:${revokeDecisionId('inc-b')}`))).toEqual([
      `dry_run:inc-b:${revokeDecisionId('inc-b')}:1`,
    ])
  })

  it('never publishes one outcome id twice when a forgotten held-back correlation comes again as a revoke', async () => {
    const x = dispatcher(tempDir('nerve-revoke-retention'), t0)
    const at = async (hours: number, correlations: Correlation[]) => {
      const before = x.published()
      x.clock.t = t0 + hours * hour
      await x.d.handle(correlations)
      await waitFor(() => expect(x.published()).toBeGreaterThan(before))
    }
    const c3 = makeCorrelation(3, { incident: { id: 'inc-b' } })
    await at(0, [makeCorrelation(1, { incident: { id: 'inc-b' } })])
    await at(1.1, [makeCorrelation(2, { incident: { id: 'inc-a' } })])
    await at(1.2, [c3]) // held back: the agent's revoke of the hour went to inc-a
    await at(4, [
      makeCorrelation(4, { incident: { id: 'inc-d' } }),
      makeCorrelation(5, { incident: { id: 'inc-e' } }),
    ])
    // c3's suppression is forgotten (with the two revokes before it, delivered and past the horizon).
    expect(
      await x.rt.metricValue('nerve_revoke_outbox_retention_deleted_rows_total', { table: 'decisions' }),
    ).toBe(3)
    // Past the horizon the bus delivers c3 again (a consumer that fell behind): inc-b's next round.
    await at(5.5, [c3])
    const ofC3 = x.outcomes().filter((o) => o.correlation_id === c3.id)
    expect(ofC3.map((o) => o.status)).toEqual(['suppressed', 'dry_run'])
    const ids = x.outcomes().map((o) => o.id)
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('keeps an outcome not on the bus yet, a revoke still delivering, and a suppression under its incident key', () => {
    const outbox = openRevokeOutbox(tempDir('nerve-revoke-retention'))
    open.push(outbox)
    const held = (n: number, decision_id = revokeDecisionId(`inc-${n}`, `c${n}`)): DecisionEntry => ({
      correlation_id: `c${n}`,
      decision_id,
      incident_id: `inc-${n}`,
      agent_id: 'data-cleaner',
      status: 'suppressed',
      reason: 'rate_limited_agent',
      time: t0 + n,
      targets: [],
    })
    const revoke: DecisionEntry = {
      ...held(3, revokeDecisionId('inc-3')),
      status: 'pending',
      reason: 'policy_allowed',
      body: '{}',
      targets: ['https://a.example/revoke'],
    }
    // c2: written before retention, under its incident's key (a later outcome of inc-2 would number after it).
    outbox.recordDecisions([held(1), held(2, revokeDecisionId('inc-2')), revoke])
    expect(outbox.forget(t0 + 10 * hour, 100)).toEqual({ decisions: 0, deliveries: 0, outcomes: 0 })
    outbox.markPublished(outbox.unpublishedOutcomes(10).through)
    expect(outbox.forget(t0 + 10 * hour, 100)).toEqual({ decisions: 1, deliveries: 0, outcomes: 1 })
    expect(outbox.decided(['c1', 'c2', 'c3'])).toEqual(new Set(['c2', 'c3']))
    expect(outbox.pendingCount()).toBe(1)
  })
})

describe('the prune, with outcomes not yet on the bus', () => {
  // The dispatcher prunes right after writing a batch's outcomes, before they are published: a plan that
  // reads every unpublished outcome for each candidate held the main thread for 75–88 ms per batch of 500,
  // and longer the further publishing fell behind (docs/performance.md, revoke outbox).
  it('finds each candidate’s outcomes by its decision, not among all unpublished ones', () => {
    const dataDir = tempDir('nerve-revoke-retention')
    open.push(openRevokeOutbox(dataDir))
    const db = new Database(join(dataDir, 'revoke-outbox.sqlite'), { readonly: true })
    const plan = db
      .prepare<[number, number], { detail: string }>(`EXPLAIN QUERY PLAN ${forgettableSql}`)
      .all(t0, 100)
      .map((row) => row.detail)
    db.close()
    expect(plan.some((d) => d.includes('outcomes_unpublished'))).toBe(false)
    expect(plan.some((d) => /SEARCH o USING (COVERING )?INDEX outcomes_decision/.test(d))).toBe(true)
  })
})
