// The `status` filter of /v1/correlations and /v1/incidents: the rows whose incident shows that revoke
// status (a delivery or decision to send before a suppression, then the newest), checked on every row the
// scan walks. Ranking each row's outcomes made it 1.5–4× slower than before the per-status detail; it now
// asks a few seeks of the status index and sorts nothing.
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import type { RevokeOutcome } from '../../../schemas/types.ts'
import { rangeSql } from '../../../sinks/stepped-scan.ts'
import { revokeStatuses, storeScan } from '../../../sinks/store-filters.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

const start = Date.UTC(2026, 10, 25, 16, 1, 30)

const outcome = (
  incident: string,
  n: number,
  status: RevokeOutcome['status'],
  time: number,
): RevokeOutcome => ({
  id: `rvk_${incident}_${n}:0`,
  decision_id: `rvk_${incident}_${n}`,
  time,
  correlation_id: makeCorrelation(0).id,
  incident_id: incident,
  agent_id: 'data-cleaner',
  status,
  reason: status === 'suppressed' ? 'rate_limited_agent' : status === 'sent' ? 'delivered' : 'policy_allowed',
  attempts: 0,
})

/** Each incident's outcomes (status, time offset) and the status it shows. */
const incidents: [string, [RevokeOutcome['status'], number][], string][] = [
  ['inc-none', [], 'none'],
  [
    'inc-sent',
    [
      ['pending', 0],
      ['sent', 458],
    ],
    'sent',
  ],
  [
    'inc-sent-then-held',
    [
      ['pending', 0],
      ['sent', 458],
      ['suppressed', 900],
      ['suppressed', 950],
    ],
    'sent',
  ],
  [
    'inc-held',
    [
      ['suppressed', 10],
      ['suppressed', 20],
    ],
    'suppressed',
  ],
  [
    'inc-pending',
    [
      ['suppressed', 5],
      ['pending', 7],
    ],
    'pending',
  ],
  [
    'inc-failed',
    [
      ['pending', 0],
      ['failed', 30_000],
    ],
    'failed',
  ],
  [
    'inc-retried',
    [
      ['pending', 0],
      ['failed', 30_000],
      ['sent', 60_000],
    ],
    'sent',
  ],
  [
    'inc-dry',
    [
      ['dry_run', 3],
      ['suppressed', 4],
    ],
    'dry_run',
  ],
  [
    'inc-tie',
    [
      ['pending', 100],
      ['sent', 100],
    ],
    'sent',
  ],
]

function storeWithIncidents() {
  const opened = openStore()
  opened.store.writeCorrelations(
    incidents.map(([id], n) => {
      const c = makeCorrelation(n, { incident: { id } })
      return { ...c, agent: { ...c.agent, id: `agent-${n}` } }
    }),
  )
  opened.store.writeOutcomes(
    incidents.flatMap(([id, list]) => list.map(([status, at], n) => outcome(id, n, status, start + at))),
  )
  return opened
}

describe('the status filter', () => {
  it("finds the incidents and correlations whose incident shows that status, as the list's column says", async () => {
    const { get } = storeWithIncidents()
    const shown = (await get('/v1/incidents?limit=100')).body.items.map(
      (i: { id: string; revoke: { status: string } | null }) => [i.id, i.revoke?.status ?? 'none'],
    )
    expect(Object.fromEntries(shown)).toEqual(Object.fromEntries(incidents.map(([id, , s]) => [id, s])))
    for (const status of [...revokeStatuses, 'none']) {
      const expected = incidents
        .filter(([, , s]) => s === status)
        .map(([id]) => id)
        .sort()
      const byIncident = (await get(`/v1/incidents?status=${status}&limit=100`)).body
      expect(byIncident.items.map((i: { id: string }) => i.id).sort(), status).toEqual(expected)
      expect(byIncident.total, status).toBe(expected.length)
      const byCorrelation = (await get(`/v1/correlations?status=${status}&limit=100`)).body
      expect(
        byCorrelation.items.map((c: { incident: { id: string } }) => c.incident.id).sort(),
        status,
      ).toEqual(expected)
    }
  })

  it('checks each row by seeks of the status index, ranking none of its outcomes', () => {
    const { dataDir } = storeWithIncidents()
    const db = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
    const range = { lower: [1, 'x'] as [number, string], upper: [5, 'y'] as [number, string] }
    for (const list of ['correlations', 'incidents'] as const)
      for (const status of [...revokeStatuses, 'none']) {
        const scan = storeScan(list, { limit: 100, text: { status } })
        if (!scan) throw new Error('no scan')
        const s = rangeSql(scan, range, '*', 'rows')
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${s.sql}`).all(...s.params, 10) as { detail: string }[])
          .map((r) => r.detail)
          .join('; ')
        expect(plan, `${list} ${status}`).not.toContain('TEMP B-TREE')
        expect(plan, `${list} ${status}`).not.toMatch(/SCAN r\b/)
      }
    db.close()
  })
})
