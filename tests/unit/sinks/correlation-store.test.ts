import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import type { Correlation, RevokeOutcome } from '../../../schemas/types.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { closeStore, closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

const agentRef = (id: string) => ({ id, resolved_by: 'registry' as const, identity: {} })
const ids = (items: { id: string }[]) => items.map((c) => c.id)

function outcome(n: number, overrides: Partial<RevokeOutcome> = {}): RevokeOutcome {
  return {
    id: `rvk_a:${n}`,
    decision_id: 'rvk_a',
    time: Date.UTC(2026, 10, 25, 16, 10, n),
    correlation_id: makeCorrelation(0).id,
    incident_id: 'inc-1',
    agent_id: 'data-cleaner',
    status: 'pending',
    reason: 'policy_allowed',
    attempts: 0,
    ...overrides,
  }
}

describe('correlation store', () => {
  it('stores a correlation once, however often it is redelivered or re-emitted', async () => {
    const { store, rt, dataDir } = openStore()
    const c = makeCorrelation(0)
    expect(store.writeCorrelations([c, c])).toMatchObject({ stored: 1, duplicates: 1 })
    expect(store.writeCorrelations([c])).toMatchObject({ stored: 0, duplicates: 1 })
    await closeStore(store)
    const reopened = openStore(dataDir)
    expect(reopened.store.writeCorrelations([c])).toMatchObject({ stored: 0, duplicates: 1 })
    expect(reopened.store.correlations({ limit: 100, text: {} })).toEqual([c])
    expect(reopened.store.incident('inc-data-cleaner-0')?.incident.correlations).toBe(1)
    expect(
      await rt.metricValue('nerve_component_sent_events_total', { component: 'correlation_store' }),
    ).toBe(1)
    expect(
      await rt.metricValue('nerve_component_discarded_events_total', {
        component: 'correlation_store',
        reason: 'duplicate',
      }),
    ).toBe(2)
  })

  it('serves /v1/correlations newest first (by correlation time), filtered by agent and since, limited', async () => {
    const { store, get } = openStore()
    const cs = [0, 1, 2, 3, 4, 5].map((n) => makeCorrelation(n, { agent: agentRef(n % 2 ? 'odd' : 'even') }))
    store.writeCorrelations([cs[3], cs[0], cs[5], cs[1], cs[4], cs[2]] as Correlation[])

    const all = await get('/v1/correlations')
    expect(all.status).toBe(200)
    expect(ids(all.body.items)).toEqual(ids([...cs].reverse()))
    expect(all.body.count).toBe(6)
    expect(ids((await get('/v1/correlations?agent=odd')).body.items)).toEqual(
      ids([cs[5], cs[3], cs[1]] as Correlation[]),
    )
    const since = (cs[3] as Correlation).time
    expect(ids((await get(`/v1/correlations?since=${since}`)).body.items)).toEqual(
      ids([cs[5], cs[4], cs[3]] as Correlation[]),
    )
    const iso = new Date(since).toISOString()
    expect(ids((await get(`/v1/correlations?since=${iso}&agent=even&limit=1`)).body.items)).toEqual([
      cs[4]?.id,
    ])
  })

  it('answers 400 naming each bad filter', async () => {
    const { get } = openStore()
    const res = await get('/v1/correlations?since=yesterday&limit=5000&agnet=x')
    expect(res.status).toBe(400)
    expect(res.body.error.code).toBe('INPUT_INVALID')
    expect(res.body.error.details.map((d: { path: string }) => d.path).sort()).toEqual([
      'agnet',
      'limit',
      'since',
    ])
    expect((await get('/v1/correlations?limit=0')).status).toBe(400)
    expect((await get('/v1/correlations?limit=1.5')).status).toBe(400)
    expect((await get('/v1/correlations?limit=1000')).status).toBe(200)
  })

  it('aggregates incidents: first/last seen, counts, agent, rules, actions, max score', async () => {
    const { store, get } = openStore()
    const incident = { id: 'inc-1' }
    const a = makeCorrelation(0, { incident, score: 60 })
    const b = makeCorrelation(1, {
      incident,
      score: 91,
      rule: { id: 'shell-then-secrets', severity: 90, revoke: true },
      edge: { ...a.edge },
      core: { ...makeCorrelation(1).core, action: 'secretsmanager:GetSecretValue' },
    })
    const other = makeCorrelation(9, { agent: agentRef('etl') })
    store.writeCorrelations([a, b, b, other])

    const list = await get('/v1/incidents')
    expect(ids(list.body.items)).toEqual([other.incident.id, 'inc-1'])
    const detail = await get('/v1/incidents/inc-1')
    expect(detail.status).toBe(200)
    expect(detail.body.incident).toEqual({
      id: 'inc-1',
      first_seen_iso: new Date(a.edge.time).toISOString(),
      last_seen_iso: new Date(b.time).toISOString(),
      falco_rules: ['Unexpected outbound connection destination'],
      agent_id: 'data-cleaner',
      first_seen: a.edge.time,
      last_seen: b.time,
      correlations: 2,
      edge_events: 1,
      core_events: 2,
      max_score: 91,
      rules: ['outbound-then-iam-write', 'shell-then-secrets'],
      actions: ['iam:AttachRolePolicy', 'secretsmanager:GetSecretValue'],
      revoke: null,
    })
    expect(ids(detail.body.correlations)).toEqual([b.id, a.id])
    expect(ids((await get('/v1/incidents?agent=etl')).body.items)).toEqual([other.incident.id])
    expect((await get('/v1/incidents/nope')).status).toBe(404)
  })

  it("finds an incident's correlations among its agent's other incidents and other agents'", async () => {
    const { store, get } = openStore()
    // Two incidents of one agent, even interleaved in time, and an incident of another agent between them.
    const mine = [0, 2, 4].map((n) => makeCorrelation(n, { incident: { id: 'inc-mine' } }))
    const sibling = [1, 3, 6].map((n) => makeCorrelation(n, { incident: { id: 'inc-sibling' } }))
    const other = [2, 3].map((n) =>
      makeCorrelation(n + 10, { agent: agentRef('etl'), incident: { id: 'inc-etl' }, time: mine[1]?.time }),
    )
    store.writeCorrelations([...mine, ...sibling, ...other])
    const newestFirst = (cs: Correlation[]) => ids([...cs].reverse())
    expect(ids(store.incident('inc-mine')?.correlations ?? [])).toEqual(newestFirst(mine))
    expect(ids(store.incident('inc-sibling')?.correlations ?? [])).toEqual(newestFirst(sibling))
    const page = await get('/v1/correlations?incident=inc-mine&limit=2')
    expect(ids(page.body.items)).toEqual(newestFirst(mine).slice(0, 2))
    expect(page.body.total).toBe(3)
    const rest = await get(`/v1/correlations?incident=inc-mine&limit=2&cursor=${page.body.next}`)
    expect(ids(rest.body.items)).toEqual([mine[0]?.id])
    expect((await get('/v1/correlations?incident=inc-etl&agent=data-cleaner')).body.items).toEqual([])
    expect((await get('/v1/correlations?incident=nope')).body).toMatchObject({ items: [], total: 0 })
    // Filtered further, the total counts the incident's rows that pass.
    const since = (await get(`/v1/correlations?incident=inc-mine&since=${mine[1]?.time}`)).body
    expect({ ids: ids(since.items), total: since.total }).toEqual({
      ids: newestFirst(mine).slice(0, 2),
      total: 2,
    })
    // Retention takes the incident's own correlations, not its neighbours' in time.
    expect(store.deleteBefore((mine[2]?.time as number) + 1)).toMatchObject({ incidents: 2, correlations: 5 })
    expect(ids(store.correlations({ limit: 100, text: {} }))).toEqual(newestFirst(sibling))
  })

  it("keeps an incident's row whole across batches that grow its lists and batches that only count", async () => {
    const { store, dataDir } = openStore()
    const id = 'inc-lists'
    const c = (n: number, action = 'iam:AttachRolePolicy') =>
      makeCorrelation(n, { incident: { id }, core: { ...makeCorrelation(n).core, action } })
    store.writeCorrelations([c(1)])
    store.writeCorrelations([c(2)])
    store.writeCorrelations([c(3, 'iam:CreateAccessKey')])
    store.writeCorrelations([c(4)])
    const expected = {
      correlations: 4,
      edge_events: 4,
      core_events: 4,
      first_seen: c(1).edge.time,
      last_seen: c(4).time,
      actions: ['iam:AttachRolePolicy', 'iam:CreateAccessKey'],
    }
    expect(store.incident(id)?.incident).toMatchObject(expected)
    await closeStore(store)
    const reopened = openStore(dataDir).store
    expect(reopened.incident(id)?.incident).toMatchObject(expected)
    reopened.writeCorrelations([c(5)])
    expect(reopened.incident(id)?.incident).toMatchObject({
      ...expected,
      correlations: 5,
      edge_events: 5,
      core_events: 5,
      last_seen: c(5).time,
    })
  })

  it('retention deletes whole incidents once their last correlation is past the cutoff, and keeps open ones whole', async () => {
    const { store, rt } = openStore()
    const hour = 3_600_000
    // inc-old: two correlations, both old. inc-open: an old one and a recent one. inc-1's outcomes go with it.
    const old = [0, 1].map((n) => makeCorrelation(n, { incident: { id: 'inc-old' } }))
    const openOld = makeCorrelation(2, { incident: { id: 'inc-open' } })
    const openNew = makeCorrelation(3, {
      incident: { id: 'inc-open' },
      time: makeCorrelation(3).time + 48 * hour,
    })
    store.writeCorrelations([...old, openOld, openNew])
    store.writeOutcomes([
      outcome(1, { incident_id: 'inc-old' }),
      outcome(2, { incident_id: 'inc-open' }),
      outcome(3, { incident_id: 'inc-gone', time: old[0]?.time }),
    ])
    const cutoff = openNew.time - 24 * hour

    expect(store.deleteBefore(cutoff)).toEqual({ incidents: 1, correlations: 2, revoke_outcomes: 2 })
    expect(ids(store.incidents({ limit: 100, text: {} }))).toEqual(['inc-open'])
    expect(ids(store.correlations({ limit: 100, text: {} }))).toEqual([openNew.id, openOld.id])
    expect(ids(store.revokes({ limit: 100, text: {} }))).toEqual(['rvk_a:2'])
    expect(store.incident('inc-open')?.incident.correlations).toBe(2)
    expect(await rt.metricValue('nerve_store_retention_deleted_rows_total', { table: 'correlations' })).toBe(
      2,
    )
    expect(store.deleteBefore(cutoff)).toEqual({ incidents: 0, correlations: 0, revoke_outcomes: 0 })
  })

  it('stores revoke outcomes once, serves /v1/revokes and shows the telling outcome on the incident', async () => {
    const { store, get } = openStore()
    store.writeCorrelations([makeCorrelation(0, { incident: { id: 'inc-1' } })])
    const outcomes = [
      outcome(1),
      outcome(2, {
        status: 'sent',
        reason: 'delivered',
        attempts: 1,
        http_status: 204,
        target: 'https://h/r',
      }),
      outcome(3, { status: 'suppressed', reason: 'incident_already_revoked', correlation_id: 'c2' }),
      outcome(4, {
        id: 'rvk_b:1',
        decision_id: 'rvk_b',
        incident_id: 'inc-2',
        agent_id: 'etl',
        status: 'dry_run',
      }),
    ]
    expect(store.writeOutcomes([...outcomes, outcomes[0] as RevokeOutcome])).toEqual({
      stored: 4,
      duplicates: 1,
    })

    expect(ids((await get('/v1/revokes')).body.items)).toEqual(['rvk_b:1', 'rvk_a:3', 'rvk_a:2', 'rvk_a:1'])
    expect(ids((await get('/v1/revokes?status=sent')).body.items)).toEqual(['rvk_a:2'])
    expect(ids((await get('/v1/revokes?agent=etl')).body.items)).toEqual(['rvk_b:1'])
    expect(ids((await get('/v1/revokes?incident=inc-1&limit=2')).body.items)).toEqual(['rvk_a:3', 'rvk_a:2'])
    const detail = await get('/v1/incidents/inc-1')
    expect(detail.body.incident.revoke).toEqual({
      decision_id: 'rvk_a',
      status: 'sent',
      reason: 'delivered',
      time: outcomes[1]?.time,
      time_iso: new Date(outcomes[1]?.time as number).toISOString(),
    })
    expect(ids(detail.body.revokes)).toEqual(['rvk_a:3', 'rvk_a:2', 'rvk_a:1'])
  })

  it('folds the incidents a correlation says its incident replaces into it, outcomes included', () => {
    const { store } = openStore()
    const merged = 'a'.repeat(64)
    const renamed = 'b'.repeat(64)
    const survivor = 'c'.repeat(64)
    store.writeCorrelations([
      makeCorrelation(1, { incident: { id: merged } }),
      makeCorrelation(2, { incident: { id: renamed } }),
    ])
    store.writeOutcomes([outcome(1, { incident_id: merged })])
    store.writeCorrelations([makeCorrelation(3, { incident: { id: survivor, merged: [merged, renamed] } })])
    expect(store.incident(merged)).toBeUndefined()
    expect(store.incident(renamed)).toBeUndefined()
    const folded = store.incident(survivor)
    expect(folded?.incident.correlations).toBe(3)
    expect(folded?.correlations.map((c) => c.incident.id)).toEqual([survivor, survivor, survivor])
    expect(store.total('correlations', { limit: 10, text: { incident: survivor } })).toBe(3)
    expect(store.total('correlations', { limit: 10, text: { incident: merged } })).toBe(0)
    expect(folded?.revokes.map((o) => o.id)).toEqual(['rvk_a:1'])
  })

  it("files a revoke outcome that comes after a fold under the survivor: the incident shows its delivery's result", () => {
    // The dispatcher decided under the old id; its delivery's outcome (sent, or failed) comes later, after
    // the merge. Kept under the old id, it named no incident, and the survivor showed "pending" for good.
    const { store } = openStore()
    const [merged, survivor, next] = ['a'.repeat(64), 'c'.repeat(64), 'f'.repeat(64)]
    store.writeCorrelations([makeCorrelation(1, { incident: { id: merged } })])
    store.writeOutcomes([outcome(1, { incident_id: merged })])
    store.writeCorrelations([makeCorrelation(3, { incident: { id: survivor, merged: [merged] } })])
    store.writeOutcomes([
      outcome(2, { incident_id: merged, status: 'sent', reason: 'delivered', attempts: 1 }),
    ])
    expect(store.incident(survivor)?.incident.revoke).toMatchObject({ status: 'sent', reason: 'delivered' })
    expect(store.incident(survivor)?.revokes.map((o) => o.id)).toEqual(['rvk_a:2', 'rvk_a:1'])
    expect(ids(store.revokes({ limit: 10, text: { incident: survivor } }))).toEqual(['rvk_a:2', 'rvk_a:1'])
    // Folded again: the first incident's later outcomes follow it to the newest survivor.
    store.writeCorrelations([makeCorrelation(4, { incident: { id: next, merged: [survivor] } })])
    store.writeOutcomes([
      outcome(3, { incident_id: merged, status: 'failed', reason: 'rejected', attempts: 2 }),
    ])
    expect(store.incident(next)?.revokes.map((o) => o.id)).toEqual(['rvk_a:3', 'rvk_a:2', 'rvk_a:1'])
  })

  it('retention forgets the folded ids of the incidents it deletes', async () => {
    const { store, dataDir } = openStore()
    const [merged, survivor] = ['a'.repeat(64), 'c'.repeat(64)]
    store.writeCorrelations([makeCorrelation(1, { incident: { id: merged } })])
    store.writeCorrelations([makeCorrelation(3, { incident: { id: survivor, merged: [merged] } })])
    const aliases = () => {
      const db = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
      const n = (db.prepare('SELECT COUNT(*) AS n FROM incident_aliases').get() as { n: number }).n
      db.close()
      return n
    }
    expect(aliases()).toBe(1)
    store.deleteBefore(makeCorrelation(3).time + 1)
    expect(store.incident(survivor)).toBeUndefined()
    expect(aliases()).toBe(0)
  })

  it("stores a correlation's text as the bus carried it and counts it as its object, whatever its alert says", async () => {
    const [fromObjects, fromTexts] = [openStore(), openStore(undefined, { textsFromNerve: true })]
    const forged =
      '","incident":{"id":"inc-forged","first_seen":1},"merged":["inc-data-cleaner-a"],"score":100,"x":"\\"'
    const [second, third] = [makeCorrelation(2), makeCorrelation(3)]
    const cs = [
      makeCorrelation(1, { incident: { id: 'inc-data-cleaner-a', first_seen: 1, last_seen: 2 } }),
      makeCorrelation(2, {
        incident: { id: 'inc-data-cleaner-a' },
        edge: { ...second.edge, output: forged },
        core: { ...second.core, principal: forged },
      }),
      // A Falco rule name with a quote: escaped in the text, so read by JSON.parse.
      makeCorrelation(3, {
        incident: { id: 'inc-data-cleaner-b' },
        edge: { ...third.edge, rule: 'Read "shadow" file' },
      }),
      makeCorrelation(4, { incident: { id: 'inc-data-cleaner-a', merged: ['inc-data-cleaner-b'] } }),
    ]
    const texts = cs.map((c) => JSON.stringify(c))
    const sameAnswers = async () => {
      for (const url of ['/v1/correlations', '/v1/incidents', '/v1/incidents/inc-data-cleaner-a']) {
        const [a, b] = await Promise.all([fromObjects.get(url), fromTexts.get(url)])
        expect(b).toEqual(a)
      }
    }
    expect(fromObjects.store.writeCorrelations(cs.slice(0, 3)).opened.map((c) => c.id)).toEqual([
      cs[0]?.id,
      cs[2]?.id,
    ])
    const written = fromTexts.store.writeCorrelations(texts.slice(0, 3))
    expect(written).toMatchObject({ stored: 3, duplicates: 0 })
    // The log line of an opened incident gets the whole correlation.
    expect(written.opened).toEqual([cs[0], cs[2]])
    await sameAnswers()
    expect(fromTexts.store.incident('inc-data-cleaner-b')?.incident.falco_rules).toEqual([
      'Read "shadow" file',
    ])
    // The fold, read by JSON.parse, and a redelivery of all four.
    fromObjects.store.writeCorrelations(cs.slice(3))
    expect(fromTexts.store.writeCorrelations(texts.slice(3))).toMatchObject({ stored: 1 })
    expect(fromTexts.store.writeCorrelations(texts)).toMatchObject({ stored: 0, duplicates: 4 })
    await sameAnswers()
    expect(fromTexts.store.incident('inc-data-cleaner-a')?.incident).toMatchObject({
      correlations: 4,
      edge_events: 4,
      falco_rules: ['Unexpected outbound connection destination', 'Read "shadow" file'],
    })
    expect(fromTexts.store.incident('inc-forged')).toBeUndefined()
  })

  it('parses whole a text that nerve did not write (Kafka): a repeated key files it where its record says', async () => {
    // On Kafka the text is whatever the correlations topic's producer wrote. JSON.parse keeps the last of a
    // repeated key, and so do the revoke dispatcher and Elasticsearch: the store must file it there too.
    const { store, get } = openStore()
    const c = makeCorrelation(1, { incident: { id: 'inc-data-cleaner-a', first_seen: 1, last_seen: 2 } })
    const text = JSON.stringify(c).replace(
      /}$/,
      ',"agent":{"id":"victim","resolved_by":"registry","identity":{}},"incident":{"id":"inc-victim"}}',
    )
    expect(JSON.parse(text)).toMatchObject({ agent: { id: 'victim' }, incident: { id: 'inc-victim' } })
    expect(store.writeCorrelations([text])).toMatchObject({ stored: 1 })
    const filed = await get('/v1/correlations?agent=victim')
    expect(filed.body.items.map((x: Correlation) => x.agent.id)).toEqual(['victim'])
    expect((await get('/v1/correlations?agent=data-cleaner')).body.items).toEqual([])
    expect(store.incident('inc-victim')?.incident.correlations).toBe(1)
    expect(store.incident('inc-data-cleaner-a')).toBeUndefined()
  })
  it('folds incidents of the same batch with distinct counts, and a redelivery changes nothing', () => {
    const { store } = openStore()
    const [a, b] = ['d'.repeat(64), 'e'.repeat(64)]
    const c1 = makeCorrelation(1, { incident: { id: a } })
    // The same alert joined a second call in the other incident: one edge event, two core events.
    const c2 = makeCorrelation(2, { incident: { id: b }, edge: { ...c1.edge } })
    const c3 = makeCorrelation(3, {
      incident: { id: a, merged: [b] },
      core: { ...c1.core },
      edge: { ...makeCorrelation(3).edge, rule: 'Read sensitive file untrusted' },
    })
    const batch = [c1, c2, c3]
    const first = store.writeCorrelations(batch)
    expect(first).toMatchObject({ stored: 3, duplicates: 0 })
    expect(first.opened.map((c) => c.id)).toEqual([c1.id, c2.id])
    const expected = {
      correlations: 3,
      edge_events: 2,
      core_events: 2,
      falco_rules: ['Unexpected outbound connection destination', 'Read sensitive file untrusted'],
    }
    expect(store.incident(b)).toBeUndefined()
    expect(store.incident(a)?.incident).toMatchObject(expected)
    const again = store.writeCorrelations(batch)
    expect(again).toMatchObject({ stored: 0, duplicates: 3, opened: [] })
    expect(store.incident(b)).toBeUndefined()
    expect(store.incident(a)?.incident).toMatchObject(expected)
    // A later batch of the folded incident counts on from the fold.
    const c4 = makeCorrelation(4, { incident: { id: a }, edge: { ...c1.edge } })
    expect(store.writeCorrelations([c4]).opened).toEqual([])
    expect(store.incident(a)?.incident).toMatchObject({ ...expected, correlations: 4, core_events: 3 })
  })
})
