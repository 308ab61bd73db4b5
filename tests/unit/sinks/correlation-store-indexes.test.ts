// The embedded store's indexes: every list of the read API is served by one, the store keeps no index
// probed per correlation only to count an incident's distinct events (the writer keeps those ids in
// memory) and none keyed by a correlation's incident (its agent and time range find them), correlations
// are keyed by (edge time, id) rather than by their hashed id alone, and a store written with the earlier
// indexes or key opens and counts on.
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ListQuery } from '../../../runtime/list-query.ts'
import type { Correlation } from '../../../schemas/types.ts'
import { boundarySql, rangeSql } from '../../../sinks/stepped-scan.ts'
import { incidentCorrelationsSql, type StoreList, storeScan } from '../../../sinks/store-filters.ts'
import { incidentColumns } from '../../../sinks/store-reads.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { heldBack, makeCorrelation } from './correlation-fixture.ts'
import { closeStore, closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

const indexesOf = (db: Database.Database) =>
  (
    db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'correlations'`).all() as {
      name: string
    }[]
  )
    .map((r) => r.name)
    .filter((n) => !n.startsWith('sqlite_autoindex'))
    .sort()

describe('correlation store indexes', () => {
  it('serve each list by its filter, newest first, without sorting the table', () => {
    const { dataDir } = openStore()
    const db = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
    const plan = (sql: string, params: unknown[]) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[])
        .map((r) => r.detail)
        .join('; ')
    const q = (text: Record<string, string>): ListQuery => ({ limit: 100, text, since: 0 })
    const bounds = { id: 'i', agent_id: 'a', first_seen: 0, last_seen: 9 }
    const cases: [StoreList, Record<string, string>, string][] = [
      ['correlations', {}, 'correlations_time'],
      ['correlations', { agent: 'a' }, 'correlations_agent'],
      ['correlations', { incident: 'i' }, 'correlations_agent'],
      ['correlations', { rule: 'r', status: 'sent' }, 'correlations_time'],
      ['incidents', {}, 'incidents_last_seen'],
      ['incidents', { agent: 'a' }, 'incidents_agent'],
      ['incidents', { rule: 'r', min_score: '1' }, 'incidents_last_seen'],
      ['revoke_outcomes', {}, 'revoke_outcomes_time'],
      ['revoke_outcomes', { incident: 'i' }, 'revoke_outcomes_incident'],
      ['revoke_outcomes', { incident: 'i', status: 'suppressed' }, 'revoke_outcomes_incident_status'],
    ]
    // Every statement of a step walks the list's index between two keys: none reads more than a step.
    const range = { lower: [1, 'x'] as [number, string], upper: [5, 'y'] as [number, string] }
    for (const [list, text, index] of cases) {
      const scan = storeScan(list, q(text), bounds)
      if (!scan) throw new Error('no scan')
      const alias = list === 'incidents' ? 'i' : 't'
      const at = boundarySql(scan, range)
      const rows = rangeSql(scan, range, '*', 'rows')
      const count = rangeSql(scan, range, '1', 'count')
      const name = `${list} ${JSON.stringify(text)}`
      if (index === 'revoke_outcomes_incident') {
        // An incident's few outcomes: its index holds no id, so the time range bounds the walk.
        for (const s of [at, rows, count])
          expect(plan(s.sql, [...s.params, 10]), name).toContain(
            `SEARCH t USING INDEX ${index} (incident_id=? AND time>? AND time<?)`,
          )
        continue
      }
      expect(plan(at.sql, [...at.params, 10]), name).toMatch(
        new RegExp(`^SEARCH ${alias} USING COVERING INDEX ${index} \\(.*\\(\\w+,id\\)>`),
      )
      for (const s of [rows, count])
        expect(plan(s.sql, [...s.params, 10]), name).toMatch(
          new RegExp(`SEARCH ${alias} USING (COVERING )?INDEX ${index} \\(.*\\(\\w+,id\\)>.*\\(\\w+,id\\)<`),
        )
    }
    // The incident's page of correlations, its fold and its retention all go through its agent's range.
    const detail = plan(
      `SELECT record FROM correlations WHERE ${incidentCorrelationsSql} ORDER BY time DESC, id DESC`,
      [{ id: 'i', agent_id: 'a', first_seen: 0, last_seen: 1 }],
    )
    expect(detail).toBe(
      'SEARCH correlations USING INDEX correlations_agent (agent_id=? AND time>? AND time<?)',
    )
    // An incident's most telling revoke outcome (each incident row of a page) seeks the newest of each
    // status: the watched agent's held-back ones are never all read and sorted.
    const telling = `SELECT ${incidentColumns} FROM incidents i WHERE i.id = 'i'`
    const steps = plan(telling, [])
    expect(steps.match(/revoke_outcomes_incident_status \(incident_id=\? AND status=\?\)/g)).toHaveLength(5)
    expect(steps, telling).not.toContain('revoke_outcomes_incident (')
    // The one sort ranks the five statuses' newest.
    expect(steps.match(/TEMP B-TREE/g) ?? []).toHaveLength(1)
    expect(indexesOf(db)).toEqual(['correlations_agent', 'correlations_key', 'correlations_time'])
    // No index is keyed by the id alone (a hash: each insert would dirty a random page).
    expect(
      db.prepare(`SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_autoindex_correlations%'`).all(),
    ).toEqual([])
    db.close()
  })

  it('finds each correlation a fold moves by one row, in both layouts, never by scanning its incident', () => {
    // A fold moves every correlation of a merged incident (up to thousands): a lookup that scans the
    // incident's rows for each one is quadratic (8,000 correlations: seconds of the store writer).
    for (const layout of ['edge_time', 'id'] as const) {
      const dataDir = tempDir('nerve-store-fold-plan')
      if (layout === 'id') {
        const old = new Database(join(dataDir, 'store.sqlite'))
        old.exec(`CREATE TABLE correlations (
          id TEXT PRIMARY KEY, time INTEGER NOT NULL, agent_id TEXT NOT NULL, incident_id TEXT NOT NULL,
          edge_event_id TEXT NOT NULL, core_event_id TEXT NOT NULL, record TEXT NOT NULL);`)
        old.close()
      }
      const prepared: string[] = []
      const real = Database.prototype.prepare
      const spy = vi.spyOn(Database.prototype, 'prepare').mockImplementation(function (
        this: Database.Database,
        source: string,
      ) {
        prepared.push(source)
        return real.call(this, source)
      } as never)
      try {
        openStore(dataDir)
      } finally {
        spy.mockRestore()
      }
      const update = prepared.find((s) => /^UPDATE correlations SET incident_id/.test(s))
      expect(update, layout).toBeDefined()
      const db = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
      const params = (update?.match(/\?/g) ?? []).map(() => 'x')
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${update}`).all(...params) as { detail: string }[])
        .map((r) => r.detail)
        .join('; ')
      db.close()
      expect(plan, layout).toMatch(/\((rowid=\?|edge_time=\? AND id=\?|id=\?)\)$/)
    }
  })

  it('fills the pages of its time indexes as correlations and outcomes arrive in time order', async () => {
    const { store, dataDir } = openStore()
    for (let batch = 0; batch < 20; batch++) {
      const cs = Array.from({ length: 100 }, (_, i) =>
        makeCorrelation(batch * 100 + i, { incident: { id: `inc-${batch * 100 + i}` } }),
      )
      store.writeCorrelations(cs)
      store.writeOutcomes(cs.map((c, i) => ({ ...heldBack(batch * 100 + i), time: c.time })))
    }
    await store.sync()
    const db = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
    const fill = db.prepare<[string], { pages: number; full: number }>(
      'SELECT count(*) AS pages, sum(pgsize - unused) * 1.0 / sum(pgsize) AS full FROM dbstat WHERE name = ?',
    )
    // Each new entry is the newest: it goes at the index's end, and no page is split and left half empty.
    for (const index of ['correlations_time', 'incidents_last_seen', 'revoke_outcomes_time']) {
      expect(fill.get(index)?.full, index).toBeGreaterThan(0.8)
    }
    db.close()
    // And the lists still read newest first.
    const newest = store.correlations({ limit: 3, text: {} }).map((c) => c.id)
    expect(newest).toEqual([makeCorrelation(1999).id, makeCorrelation(1998).id, makeCorrelation(1997).id])
    expect(store.incidents({ limit: 1, text: {} })[0]?.id).toBe('inc-1999')
    expect(store.revokes({ limit: 1, text: {} })[0]?.id).toBe(heldBack(1999).id)
  })

  it('opens a store written with the (incident, …) indexes, drops them, and counts and serves on', async () => {
    const dataDir = tempDir('nerve-store-old')
    const first = openStore(dataDir)
    const c1 = makeCorrelation(1, { incident: { id: 'inc-old' } })
    first.store.writeCorrelations([c1])
    await closeStore(first.store)
    // As earlier versions left it: two (incident, event) indexes, then one (incident, time, id).
    const old = new Database(join(dataDir, 'store.sqlite'))
    old.exec(`CREATE INDEX correlations_incident_edge ON correlations (incident_id, edge_event_id);
      CREATE INDEX correlations_incident_core ON correlations (incident_id, core_event_id);
      CREATE INDEX correlations_incident ON correlations (incident_id, time DESC, id DESC);`)
    old.close()

    const { store, get } = openStore(dataDir)
    const check = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
    expect(indexesOf(check)).toEqual(['correlations_agent', 'correlations_key', 'correlations_time'])
    check.close()
    expect((await get('/v1/correlations?incident=inc-old')).body.items.map((c: Correlation) => c.id)).toEqual(
      [c1.id],
    )
    // The same alert joins a second call: one edge event, two core events.
    const c2 = makeCorrelation(2, { incident: { id: 'inc-old' }, edge: { ...c1.edge } })
    expect(store.writeCorrelations([c2, c1])).toMatchObject({ stored: 1, duplicates: 1, opened: [] })
    expect(store.incident('inc-old')?.incident).toMatchObject({
      correlations: 2,
      edge_events: 1,
      core_events: 2,
    })
  })

  it("indexes an agent's incidents by (agent, last_seen, id), rebuilding an index of the agent alone", async () => {
    const dataDir = tempDir('nerve-store-agent-incidents')
    const first = openStore(dataDir)
    const hour = 3_600_000
    // Three incidents of one agent, apart in time, written out of order; another agent's between them.
    const at = (n: number, incident: string, agent = 'data-cleaner') =>
      makeCorrelation(n, {
        agent: { id: agent, resolved_by: 'registry', identity: {} },
        incident: { id: incident },
        time: makeCorrelation(0).time + n * hour,
      })
    first.store.writeCorrelations([at(2, 'inc-b'), at(1, 'inc-a'), at(3, 'inc-c'), at(2, 'inc-etl', 'etl')])
    await closeStore(first.store)
    const old = new Database(join(dataDir, 'store.sqlite'))
    old.exec(`DROP INDEX incidents_agent;
      CREATE INDEX incidents_agent ON incidents (agent_id);`)
    old.close()

    const { store, get } = openStore(dataDir)
    const check = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
    expect(check.prepare(`PRAGMA index_info('incidents_agent')`).all()).toMatchObject([
      { name: 'agent_id' },
      { name: 'last_seen' },
      { name: 'id' },
    ])
    check.close()
    store.writeCorrelations([at(0, 'inc-a')])
    const ids = async (url: string) => (await get(url)).body.items.map((i: { id: string }) => i.id)
    expect(await ids('/v1/incidents?agent=data-cleaner')).toEqual(['inc-c', 'inc-b', 'inc-a'])
    const page = await get('/v1/incidents?agent=data-cleaner&limit=2')
    expect(page.body.total).toBe(3)
    expect(await ids(`/v1/incidents?agent=data-cleaner&limit=2&cursor=${page.body.next}`)).toEqual(['inc-a'])
  })

  it('stores a correlation once by its id, whether delivered again alone or among others', () => {
    const { store } = openStore()
    const c1 = makeCorrelation(1, { incident: { id: 'inc-key' } })
    const c2 = makeCorrelation(2, { incident: { id: 'inc-key' } })
    expect(store.writeCorrelations([c1, c2])).toMatchObject({ stored: 2, duplicates: 0 })
    expect(store.writeCorrelations([c2, c1, c2])).toMatchObject({ stored: 0, duplicates: 3 })
    expect(store.writeCorrelations([JSON.stringify(c1)])).toMatchObject({ stored: 0, duplicates: 1 })
    expect(store.total('correlations', { limit: 10, text: {} })).toBe(2)
    expect(store.incident('inc-key')?.incident.correlations).toBe(2)
  })

  it('opens a store keyed by the id alone (the previous layout) and writes, dedups and folds in it', async () => {
    const dataDir = tempDir('nerve-store-id-key')
    // The previous version's table and indexes, with one correlation.
    const old = new Database(join(dataDir, 'store.sqlite'))
    old.exec(`CREATE TABLE correlations (
      id TEXT PRIMARY KEY, time INTEGER NOT NULL, agent_id TEXT NOT NULL, incident_id TEXT NOT NULL,
      edge_event_id TEXT NOT NULL, core_event_id TEXT NOT NULL, record TEXT NOT NULL);
      CREATE INDEX correlations_time ON correlations (time DESC, id DESC);
      CREATE INDEX correlations_agent ON correlations (agent_id, time DESC, id DESC);
      CREATE INDEX correlations_incident ON correlations (incident_id, time DESC, id DESC);`)
    const c9 = makeCorrelation(9, { incident: { id: 'inc-old' } })
    old
      .prepare('INSERT INTO correlations VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(c9.id, c9.time, c9.agent.id, 'inc-old', c9.edge.event_id, c9.core.event_id, JSON.stringify(c9))
    old.close()

    const { store } = openStore(dataDir)
    expect(store.writeCorrelations([c9])).toMatchObject({ stored: 0, duplicates: 1 })
    const c1 = makeCorrelation(1, { incident: { id: 'inc-a' } })
    const c2 = makeCorrelation(2, { incident: { id: 'inc-b' } })
    expect(store.writeCorrelations([c1, c2, c1])).toMatchObject({ stored: 2, duplicates: 1 })
    // An earlier member renames inc-b to inc-a's successor: both incidents fold into it.
    const c0 = makeCorrelation(0, { incident: { id: 'inc-c', merged: ['inc-a', 'inc-b'] } })
    expect(store.writeCorrelations([c0])).toMatchObject({ stored: 1 })
    expect(store.incident('inc-c')?.correlations.map((c) => c.id)).toEqual([c2.id, c1.id, c0.id])
    expect(store.incident('inc-a')).toBeUndefined()
    const check = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
    const columns = check.prepare('PRAGMA table_info(correlations)').all() as { name: string }[]
    expect(columns.map((c) => c.name)).not.toContain('edge_time')
    expect(indexesOf(check)).toEqual(['correlations_agent', 'correlations_time'])
    check.close()
  })

  it('counts right when another connection wrote the incident since (its ids are read again)', () => {
    const dataDir = tempDir('nerve-store-two')
    const a = openStore(dataDir).store
    const b = openStore(dataDir).store
    const c1 = makeCorrelation(1, { incident: { id: 'inc-2' } })
    const c2 = makeCorrelation(2, { incident: { id: 'inc-2' }, edge: { ...c1.edge } })
    const c3 = makeCorrelation(3, { incident: { id: 'inc-2' }, core: { ...c2.core } })
    a.writeCorrelations([c1])
    b.writeCorrelations([c2])
    a.writeCorrelations([c3])
    expect(a.incident('inc-2')?.incident).toMatchObject({ correlations: 3, edge_events: 2, core_events: 2 })
  })

  it('counts right after a failed write rolled its batch back', () => {
    const { store } = openStore()
    const c1 = makeCorrelation(1, { incident: { id: 'inc-3' } })
    const broken = { ...makeCorrelation(2, { incident: { id: 'inc-3' } }), edge: undefined }
    expect(() => store.writeCorrelations([c1, broken as never])).toThrow()
    expect(store.incident('inc-3')).toBeUndefined()
    expect(store.writeCorrelations([c1])).toMatchObject({ stored: 1, opened: [{ id: c1.id }] })
    expect(store.incident('inc-3')?.incident).toMatchObject({ correlations: 1, edge_events: 1 })
  })
})
