// The watched agent decides how many revoke outcomes its own incident has: each correlation of it that the
// rate limits hold back records one (`suppressed`, rate_limited_agent or rate_limited_global; the other
// suppressions are counted, not recorded: revoke-decisions.ts). An incident's detail read every
// one of them in one statement, into one answer. It now carries, per status, the count and the newest few,
// so the revoke that went ahead (sent, failed, pending, dry_run) stays in view however many were held back
// after it; the rest of a status pages with GET /v1/revokes?incident=…&status=…&cursor=….
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { NerveError } from '../../../runtime/errors.ts'
import type { RevokeOutcome } from '../../../schemas/types.ts'
import {
  createStoreReads,
  maxIncidentRevokeCount,
  maxIncidentRevokesPerStatus,
} from '../../../sinks/store-reads.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

const incidentId = 'inc-data-cleaner-flood'
const decisionId = 'rvk_c3014acef5021ef0101a442d1d2ef898'
const start = Date.UTC(2026, 10, 25, 16, 1, 30)

/** The revoke that went ahead: decided (pending), then delivered (sent). */
const revoke: RevokeOutcome[] = [
  {
    id: `${decisionId}:0`,
    decision_id: decisionId,
    time: start,
    correlation_id: makeCorrelation(0).id,
    incident_id: incidentId,
    agent_id: 'data-cleaner',
    status: 'pending',
    reason: 'policy_allowed',
    attempts: 0,
  },
  {
    id: `${decisionId}:1`,
    decision_id: decisionId,
    time: start + 458,
    correlation_id: makeCorrelation(0).id,
    incident_id: incidentId,
    agent_id: 'data-cleaner',
    status: 'sent',
    reason: 'delivered',
    target: 'https://hooks.example/revoke',
    attempts: 1,
    http_status: 204,
  },
]

/** Every later correlation of the incident, held back by the rate limits: one row each. */
const heldBack = (count: number): RevokeOutcome[] =>
  Array.from({ length: count }, (_, n) => ({
    id: `rvk_held_${String(n).padStart(6, '0')}:0`,
    decision_id: `rvk_held_${String(n).padStart(6, '0')}`,
    time: start + 1000 + n * 10,
    correlation_id: makeCorrelation(n + 1).id,
    incident_id: incidentId,
    agent_id: 'data-cleaner',
    status: 'suppressed',
    reason: n % 2 ? 'rate_limited_global' : 'rate_limited_agent',
    attempts: 0,
  }))

function floodedStore(suppressed: number) {
  const opened = openStore()
  opened.store.writeCorrelations([makeCorrelation(0, { incident: { id: incidentId } })])
  opened.store.writeOutcomes([...revoke, ...heldBack(suppressed)])
  return opened
}

describe("an incident's revoke outcomes, in its detail", () => {
  it('are bounded whatever the number held back, and the revoke that went ahead stays in view', async () => {
    const { get } = floodedStore(3000)
    const res = await get(`/v1/incidents/${incidentId}`)
    expect(res.status).toBe(200)
    const { revokes, revoke_counts, revokes_next } = res.body
    expect(revokes.length).toBeLessThanOrEqual(5 * maxIncidentRevokesPerStatus)
    expect(revoke_counts).toEqual({ pending: 1, sent: 1, failed: 0, dry_run: 0, suppressed: 3000 })
    const ids = revokes.map((o: RevokeOutcome) => o.id)
    expect(ids).toContain(`${decisionId}:1`)
    expect(ids).toContain(`${decisionId}:0`)
    expect(revokes.filter((o: RevokeOutcome) => o.status === 'suppressed')).toHaveLength(
      maxIncidentRevokesPerStatus,
    )
    // Newest first across statuses, as before.
    const times = revokes.map((o: RevokeOutcome) => o.time)
    expect(times).toEqual([...times].sort((a, b) => b - a))
    expect(Object.keys(revokes_next)).toEqual(['suppressed'])
    expect(res.body.incident.revoke).toMatchObject({ status: 'sent', reason: 'delivered' })
  })

  it('page on through /v1/revokes from where the detail left off, each outcome once', async () => {
    const { get } = floodedStore(2500)
    const detail = (await get(`/v1/incidents/${incidentId}`)).body
    const seen = new Set<string>(
      detail.revokes.filter((o: RevokeOutcome) => o.status === 'suppressed').map((o: RevokeOutcome) => o.id),
    )
    let cursor: string | undefined = detail.revokes_next.suppressed
    while (cursor) {
      const page = await get(
        `/v1/revokes?incident=${incidentId}&status=suppressed&limit=1000&cursor=${cursor}`,
      )
      expect(page.status).toBe(200)
      for (const o of page.body.items) {
        expect(seen.has(o.id)).toBe(false)
        seen.add(o.id)
      }
      cursor = page.body.next
    }
    expect(seen.size).toBe(2500)
  })

  it('are read in steps: a stop ends the detail read', () => {
    const { dataDir } = floodedStore(600)
    const db = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
    let steps = 0
    let stopAt = Number.POSITIVE_INFINITY
    const reads = createStoreReads(db, {
      stepRows: 50,
      checkStop: () => {
        if (++steps >= stopAt) throw new NerveError('SINK_UNAVAILABLE', 'Stopped.')
      },
    })
    expect(reads.incident(incidentId)?.revokeCounts.suppressed).toBe(600)
    const walked = steps
    // Counting 600 held-back outcomes 50 at a time takes a dozen steps at least.
    expect(walked).toBeGreaterThanOrEqual(12)
    steps = 0
    stopAt = 5
    expect(() => reads.incident(incidentId)).toThrow(expect.objectContaining({ code: 'SINK_UNAVAILABLE' }))
    expect(steps).toBe(5)
    db.close()
  })

  it(`count at most ${maxIncidentRevokeCount} of a status, and say there are more`, async () => {
    // Each console refresh counted every held-back outcome, as many as the watched agent made.
    const { get, dataDir } = floodedStore(maxIncidentRevokeCount + 5000)
    const res = await get(`/v1/incidents/${incidentId}`)
    expect(res.body.revoke_counts).toEqual({ pending: 1, sent: 1, failed: 0, dry_run: 0, suppressed: 10_000 })
    expect(res.body.revoke_counts_capped).toEqual(['suppressed'])
    expect(Object.keys(res.body.revokes_next)).toEqual(['suppressed'])
    // The count reads one past the cap, not all 15,000: steps of 1,000 rows, after a step or so per status.
    const db = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
    let steps = 0
    const reads = createStoreReads(db, { stepRows: 1000, checkStop: () => steps++ })
    reads.incident(incidentId)
    expect(steps).toBeLessThanOrEqual(6 + Math.ceil((maxIncidentRevokeCount + 1) / 1000))
    db.close()
  })
})
