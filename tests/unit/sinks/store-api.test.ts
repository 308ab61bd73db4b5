// The read API's paging and filters. Before: at most 1,000 correlations newest first, no cursor, no total,
// no rule / min_score / status / until filter, epoch ms only, incidents without their Falco rules.
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeCursor, encodeCursor } from '../../../runtime/list-query.ts'
import type { Correlation, RevokeOutcome } from '../../../schemas/types.ts'
import type { CorrelationStore } from '../../../sinks/correlation-store.ts'
import { maxIncidentCorrelations } from '../../../sinks/store-reads.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

const shellRule = { id: 'shell-then-secrets', severity: 90, revoke: true }

describe('read API paging', () => {
  it('reaches every one of 2,500 correlations by following next, with a total, newest first', async () => {
    const { store, get } = openStore()
    // Pairs share a time so that the (time, id) cursor must break ties on the id.
    const all = Array.from({ length: 2500 }, (_, n) =>
      makeCorrelation(n, { time: makeCorrelation(Math.floor(n / 2)).time }),
    )
    store.writeCorrelations(all)
    const seen: string[] = []
    let url = '/v1/correlations?limit=1000'
    for (let pages = 0; pages < 5; pages++) {
      const { status, body } = await get(url)
      expect(status).toBe(200)
      expect(body.total).toBe(2500)
      expect(body.count).toBe(body.items.length)
      seen.push(...body.items.map((c: Correlation) => c.id))
      if (!body.next) break
      url = `/v1/correlations?limit=1000&cursor=${body.next}`
    }
    expect(seen).toHaveLength(2500)
    const expected = [...all].sort((a, b) => b.time - a.time || (a.id < b.id ? 1 : -1)).map((c) => c.id)
    expect(seen).toEqual(expected)
  })

  it('pages incidents and revokes the same way, and gives no next on the last page', async () => {
    const { store, get } = openStore()
    store.writeCorrelations([0, 1, 2, 3, 4].map((n) => makeCorrelation(n)))
    const first = await get('/v1/incidents?limit=2')
    expect(first.body).toMatchObject({ count: 2, total: 5 })
    const second = await get(`/v1/incidents?limit=2&cursor=${first.body.next}`)
    const third = await get(`/v1/incidents?limit=2&cursor=${second.body.next}`)
    expect(third.body.count).toBe(1)
    expect(third.body.next).toBeUndefined()
    const ids = [first, second, third].flatMap((p) => p.body.items.map((i: { id: string }) => i.id))
    expect(ids).toEqual([4, 3, 2, 1, 0].map((n) => `inc-data-cleaner-${n}`))
  })

  it('rejects a cursor it did not hand out, naming the parameter', async () => {
    const { get } = openStore()
    for (const bad of [
      'abc',
      encodeURIComponent("1' OR 1=1 --"),
      Buffer.from('[1.5,"x"]').toString('base64url'),
    ]) {
      const res = await get(`/v1/correlations?cursor=${bad}`)
      expect(res.status).toBe(400)
      expect(res.body.error.details[0].path).toBe('cursor')
    }
    expect(decodeCursor(encodeCursor({ time: 5, id: 'c1' }))).toEqual({ time: 5, id: 'c1' })
  })
})

describe('read API filters and times', () => {
  function fill(store: CorrelationStore) {
    const a = makeCorrelation(0, { score: 55 })
    const b = makeCorrelation(1, {
      score: 91,
      rule: shellRule,
      edge: { ...makeCorrelation(1).edge, rule: 'Terminal shell in container' },
    })
    const c = makeCorrelation(2, { score: 75 })
    store.writeCorrelations([a, b, c])
    const sent: RevokeOutcome = {
      id: 'rvk_b:1',
      decision_id: 'rvk_b',
      time: b.time + 1000,
      correlation_id: b.id,
      incident_id: b.incident.id,
      agent_id: b.agent.id,
      status: 'sent',
      reason: 'delivered',
      attempts: 1,
    }
    store.writeOutcomes([sent])
    return { a, b, c }
  }
  const idsOf = (body: { items: { id: string }[] }) => body.items.map((i) => i.id)

  it('filters correlations by rule (nerve rule or Falco rule), min_score, status, since and until', async () => {
    const { store, get } = openStore()
    const { a, b, c } = fill(store)
    expect(idsOf((await get('/v1/correlations?rule=shell-then-secrets')).body)).toEqual([b.id])
    expect(idsOf((await get('/v1/correlations?rule=Terminal%20shell%20in%20container')).body)).toEqual([b.id])
    const scored = await get('/v1/correlations?min_score=70')
    expect(idsOf(scored.body)).toEqual([c.id, b.id])
    expect(scored.body.total).toBe(2)
    expect(idsOf((await get('/v1/correlations?status=sent')).body)).toEqual([b.id])
    expect(idsOf((await get('/v1/correlations?status=none')).body)).toEqual([c.id, a.id])
    const until = new Date(b.time).toISOString()
    expect(idsOf((await get(`/v1/correlations?until=${until}`)).body)).toEqual([b.id, a.id])
    expect(idsOf((await get(`/v1/correlations?since=${b.time}&until=${b.time}`)).body)).toEqual([b.id])
  })

  it('filters incidents by rule, min_score and status, and names their Falco rules', async () => {
    const { store, get } = openStore()
    const { b, c } = fill(store)
    const shell = await get('/v1/incidents?rule=Terminal%20shell%20in%20container')
    expect(idsOf(shell.body)).toEqual([b.incident.id])
    expect(shell.body.items[0].falco_rules).toEqual(['Terminal shell in container'])
    expect(shell.body.items[0].rules).toEqual(['shell-then-secrets'])
    expect(idsOf((await get('/v1/incidents?min_score=80')).body)).toEqual([b.incident.id])
    expect(idsOf((await get('/v1/incidents?status=sent')).body)).toEqual([b.incident.id])
    expect((await get('/v1/incidents?status=none&min_score=60')).body).toMatchObject({ total: 1 })
    expect(idsOf((await get('/v1/incidents?status=none&min_score=60')).body)).toEqual([c.incident.id])
  })

  it('gives every epoch-ms time an ISO 8601 twin', async () => {
    const { store, get } = openStore()
    const { b } = fill(store)
    const [item] = (await get('/v1/correlations?rule=shell-then-secrets')).body.items
    expect(item).toMatchObject({
      time: b.time,
      time_iso: new Date(b.time).toISOString(),
      edge: { time: b.edge.time, time_iso: new Date(b.edge.time).toISOString() },
      core: { time_iso: new Date(b.core.time).toISOString() },
    })
    const detail = (await get(`/v1/incidents/${b.incident.id}`)).body
    expect(detail.incident.first_seen_iso).toBe(new Date(detail.incident.first_seen).toISOString())
    expect(detail.revokes[0].time_iso).toBe(new Date(b.time + 1000).toISOString())
  })

  it('gives an incident of a flood its newest 1,000 correlations, the rest paged by incident', async () => {
    const { store, get } = openStore()
    const incident = { id: 'inc-data-cleaner-flood' }
    store.writeCorrelations(Array.from({ length: 1500 }, (_, n) => makeCorrelation(n, { incident })))
    const detail = (await get(`/v1/incidents/${incident.id}`)).body
    expect(detail.correlations).toHaveLength(maxIncidentCorrelations)
    expect(detail.incident.correlations).toBe(1500)
    expect(detail.correlations[0].id).toBe(makeCorrelation(1499).id)
    const older = await get(
      `/v1/correlations?incident=${incident.id}&limit=1000&cursor=${encodeCursor({
        time: detail.correlations.at(-1).time,
        id: detail.correlations.at(-1).id,
      })}`,
    )
    expect(older.body).toMatchObject({ count: 500, total: 1500 })
    expect(older.body.items.at(-1).id).toBe(makeCorrelation(0).id)
  })

  it('answers 400 for a min_score outside 0..100 and for until that is no time', async () => {
    const { get } = openStore()
    const res = await get('/v1/incidents?min_score=101&until=soon')
    expect(res.status).toBe(400)
    expect(res.body.error.details.map((d: { path: string }) => d.path).sort()).toEqual(['min_score', 'until'])
    expect((await get('/v1/revokes?min_score=5')).status).toBe(400)
  })

  // A typo (`status=fail`) answered 200 with nothing reads as "no failures".
  it('answers 400 for a status that is none of the revoke statuses, naming the ones allowed', async () => {
    const { store, get } = openStore()
    store.writeCorrelations([makeCorrelation(0)])
    const incidentStatuses = 'pending, sent, failed, dry_run, suppressed, none'
    for (const [url, allowed] of [
      ['/v1/incidents?status=bogus', incidentStatuses],
      ['/v1/correlations?status=open', incidentStatuses],
      ['/v1/incidents?status=fail', incidentStatuses],
      ['/v1/revokes?status=bogus', 'pending, sent, failed, dry_run, suppressed'],
      ['/v1/revokes?status=none', 'pending, sent, failed, dry_run, suppressed'],
    ] as const) {
      const res = await get(url)
      expect(res.status, url).toBe(400)
      expect(res.body.error.details, url).toEqual([
        { path: 'status', message: expect.stringContaining(`must be one of ${allowed}`) },
      ])
    }
    for (const url of [
      '/v1/incidents?status=none',
      '/v1/correlations?status=sent',
      '/v1/revokes?status=failed',
    ])
      expect((await get(url)).status, url).toBe(200)
  })
})

describe('the Falco rules of an incident', () => {
  it('keeps at most 64 distinct names, whatever the watched agent calls its alerts', () => {
    const { store } = openStore()
    const incident = { id: 'inc-flood' }
    const flood = Array.from({ length: 100 }, (_, n) =>
      makeCorrelation(n, { incident, edge: { ...makeCorrelation(n).edge, rule: `Forged rule ${n}` } }),
    )
    store.writeCorrelations(flood)
    const [listed] = store.incidents({ limit: 1, text: {} })
    expect(listed?.falco_rules).toHaveLength(64)
    expect(listed?.falco_rules[0]).toBe('Forged rule 0')
    expect(listed?.correlations).toBe(100)
  })

  it('are filled in for incidents stored before they were kept', async () => {
    const dataDir = tempDir('nerve-api-old')
    const c = makeCorrelation(0)
    const old = new Database(join(dataDir, 'store.sqlite'))
    old.exec(`CREATE TABLE correlations (id TEXT PRIMARY KEY, time INTEGER NOT NULL, agent_id TEXT NOT NULL,
      incident_id TEXT NOT NULL, edge_event_id TEXT NOT NULL, core_event_id TEXT NOT NULL, record TEXT NOT NULL);
      CREATE TABLE incidents (id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, first_seen INTEGER NOT NULL,
      last_seen INTEGER NOT NULL, correlations INTEGER NOT NULL, edge_events INTEGER NOT NULL,
      core_events INTEGER NOT NULL, max_score INTEGER NOT NULL, rules TEXT NOT NULL, actions TEXT NOT NULL);`)
    old
      .prepare('INSERT INTO correlations VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(c.id, c.time, c.agent.id, c.incident.id, c.edge.event_id, c.core.event_id, JSON.stringify(c))
    old
      .prepare('INSERT INTO incidents VALUES (?, ?, ?, ?, 1, 1, 1, ?, ?, ?)')
      .run(
        c.incident.id,
        c.agent.id,
        c.edge.time,
        c.time,
        c.score,
        '["outbound-then-iam-write"]',
        '["iam:AttachRolePolicy"]',
      )
    old.close()
    const { get } = openStore(dataDir)
    const listed = await get('/v1/incidents?rule=Unexpected%20outbound%20connection%20destination')
    expect(listed.body.items.map((i: { falco_rules: string[] }) => i.falco_rules)).toEqual([
      ['Unexpected outbound connection destination'],
    ])
  })
})
