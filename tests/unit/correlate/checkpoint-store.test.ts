import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { createSqliteCheckpointStore } from '../../../correlate/checkpoint-store.ts'
import { createCorrelator } from '../../../correlate/correlator.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { storeTestConfig as config, coreEvent, edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)

describe('createSqliteCheckpointStore', () => {
  it('keeps the state incrementally and restores a correlator that continues identically', async () => {
    const file = join(tempDir('nerve-checkpoint'), 'c.sqlite')
    const events = [
      edgeEvent({ id: 'e1', time: T0 }),
      coreEvent({ id: 'c1', time: T0 + 500 }),
      edgeEvent({ id: 'e2', time: T0 + 20_000, agent: 'other' }),
      coreEvent({ id: 'c2', time: T0 + 30_000 }), // evicts e1 and c1
      edgeEvent({ id: 'e3', time: T0 + 30_001 }),
      coreEvent({ id: 'c3', time: T0 + 30_002, agent: 'other' }),
    ]
    const straight = createCorrelator(config)
    const expected = events.map((e) => JSON.stringify(straight.accept(e)))

    for (let cut = 1; cut < events.length; cut++) {
      const store = createSqliteCheckpointStore(file)
      const first = createCorrelator(config, undefined, { trackChanges: true })
      for (const [i, e] of events.slice(0, cut).entries()) {
        first.accept(e)
        await store.save(3, { offset: i, changes: first.takeChanges(), snapshot: first.snapshot })
      }
      await store.close()
      const reopened = createSqliteCheckpointStore(file)
      const checkpoint = await reopened.load(3)
      expect(checkpoint?.offset).toBe(cut - 1)
      expect(checkpoint?.state).toEqual(JSON.parse(JSON.stringify(first.snapshot())))
      const second = createCorrelator(config, checkpoint?.state)
      expect(events.slice(cut).map((e) => JSON.stringify(second.accept(e)))).toEqual(expected.slice(cut))
      expect(await reopened.load(4)).toBeUndefined()
      await reopened.save(3, {
        offset: -1,
        changes: { ...first.takeChanges(), removed: first.snapshot().entries.map((e) => e.id) },
        snapshot: first.snapshot,
      })
      await reopened.close()
    }
  })

  it('keeps entries as compact chunk rows naming shared values, and reads entries of the first format', async () => {
    const file = join(tempDir('nerve-checkpoint'), 'c.sqlite')
    const correlator = createCorrelator(config, undefined, { trackChanges: true })
    const store = createSqliteCheckpointStore(file)
    // Three alerts of one agent and one of another: an identity per agent, one detail for all four.
    for (const [i, agent] of ['data-cleaner', 'data-cleaner', 'data-cleaner', 'other'].entries())
      correlator.accept(edgeEvent({ id: `e${i}`, time: T0 + i, agent }))
    await store.save(0, { offset: 3, changes: correlator.takeChanges(), snapshot: correlator.snapshot })
    await store.close()
    const db = new Database(file)
    const count = (table: string) =>
      (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n
    expect([count('correlate_chunks'), count('correlate_values'), count('correlate_entries')]).toEqual([
      1, 3, 0,
    ])
    // The first format: one JSON object per entry in correlate_entries.
    const { entries } = correlator.snapshot()
    db.exec('DELETE FROM correlate_chunks; DELETE FROM correlate_values;')
    for (const e of entries)
      db.prepare('INSERT INTO correlate_entries VALUES (?, ?, ?, ?)').run(0, e.id, e.seq, JSON.stringify(e))
    db.close()

    const reopened = createSqliteCheckpointStore(file)
    const state = (await reopened.load(0))?.state
    expect(state).toEqual(JSON.parse(JSON.stringify(correlator.snapshot())))
    const restored = createCorrelator(config, state, { trackChanges: true })
    // Past every window: each entry is evicted, and the values they named go with the last of them.
    restored.accept(edgeEvent({ id: 'late', time: T0 + 60_000, agent: 'third' }))
    await reopened.save(0, { offset: 4, changes: restored.takeChanges(), snapshot: restored.snapshot })
    await reopened.close()
    const after = new Database(file, { readonly: true })
    const left = (table: string) =>
      (after.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n
    // The chunk of the four evicted entries is gone with them; the new entry's chunk names two values.
    expect([left('correlate_chunks'), left('correlate_values'), left('correlate_entries')]).toEqual([1, 2, 0])
    after.close()
    const last = createSqliteCheckpointStore(file)
    expect((await last.load(0))?.state).toEqual(JSON.parse(JSON.stringify(restored.snapshot())))
    await last.close()
  })

  it('writes the entries a save added as chunks of 256, marks removed ones dead, and drops emptied chunks', async () => {
    const file = join(tempDir('nerve-checkpoint'), 'c.sqlite')
    const correlator = createCorrelator(config, undefined, { trackChanges: true })
    const store = createSqliteCheckpointStore(file)
    const rowsOf = () => {
      const db = new Database(file, { readonly: true })
      const rows = db
        .prepare(
          'SELECT c.chunk, c.entries, coalesce(d.dead, c.dead) AS dead FROM correlate_chunks c ' +
            'LEFT JOIN correlate_chunk_dead d USING (partition, chunk) WHERE c.partition = 0 ORDER BY chunk',
        )
        .all() as { chunk: number; entries: string; dead: string }[]
      db.close()
      return rows.map((r) => [r.chunk, (JSON.parse(r.entries) as unknown[]).length, JSON.parse(r.dead)])
    }
    // 600 alerts of 60 agents (under their cap of 100), 1 ms apart, in one save: three chunk rows.
    for (let i = 0; i < 600; i++)
      correlator.accept(edgeEvent({ id: `e${i}`, time: T0 + i, agent: `agent-${i % 60}` }))
    await store.save(0, { offset: 599, changes: correlator.takeChanges(), snapshot: correlator.snapshot })
    expect(rowsOf()).toEqual([
      [0, 256, []],
      [1, 256, []],
      [2, 88, []],
    ])
    // Past the first 300 alerts' retention (1 + 10 + 5 s): they are evicted. The first chunk goes whole,
    // the second keeps its last 212 entries (its first 44 marked dead), the third is untouched.
    correlator.accept(edgeEvent({ id: 'next', time: T0 + 16_000 + 300, agent: 'agent-x' }))
    await store.save(0, { offset: 600, changes: correlator.takeChanges(), snapshot: correlator.snapshot })
    expect(rowsOf()).toEqual([
      [1, 256, Array.from({ length: 44 }, (_, i) => i)],
      [2, 88, []],
      [3, 1, []],
    ])
    await store.close()
    const reopened = createSqliteCheckpointStore(file)
    const state = (await reopened.load(0))?.state
    expect(state?.entries.map((e) => e.id)).toEqual([
      ...Array.from({ length: 300 }, (_, i) => `e${i + 300}`),
      'next',
    ])
    expect(state).toEqual(JSON.parse(JSON.stringify(correlator.snapshot())))
    // The same agents' alerts keep coming after the restart: new chunks are numbered after the last.
    const restored = createCorrelator(config, state, { trackChanges: true })
    restored.accept(edgeEvent({ id: 'after', time: T0 + 16_400, agent: 'agent-y' }))
    await reopened.save(0, { offset: 601, changes: restored.takeChanges(), snapshot: restored.snapshot })
    await reopened.close()
    // Its eviction leaves chunk 1 more than half dead (144 of 256): its 112 live entries move to chunk 4.
    expect(rowsOf().map(([chunk, n]) => [chunk, n])).toEqual([
      [2, 88],
      [3, 1],
      [4, 113],
    ])
    const again = createSqliteCheckpointStore(file)
    expect((await again.load(0))?.state).toEqual(JSON.parse(JSON.stringify(restored.snapshot())))
    await again.close()
  })

  it('restores entries written again in a later chunk in their buffer order', async () => {
    const file = join(tempDir('nerve-checkpoint'), 'c.sqlite')
    const correlator = createCorrelator({ ...config, max_events_per_agent: 1000 }, undefined, {
      trackChanges: true,
    })
    const store = createSqliteCheckpointStore(file)
    // Identical alerts of one agent fold into the 32nd once 32 are buffered: the folded entry (seq 31) is
    // written again by every later save, behind entries of other agents buffered after it.
    let offset = 0
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 20; i++) {
        const time = T0 + round * 100 + i
        correlator.accept(edgeEvent({ id: `same-${round}-${i}`, time, output: 'the same alert' }))
        correlator.accept(edgeEvent({ id: `other-${round}-${i}`, time, agent: `other-${i}` }))
      }
      await store.save(0, {
        offset: offset++,
        changes: correlator.takeChanges(),
        snapshot: correlator.snapshot,
      })
    }
    expect(correlator.stats().collapsed).toBeGreaterThan(0)
    await store.close()
    const reopened = createSqliteCheckpointStore(file)
    const state = (await reopened.load(0))?.state
    await reopened.close()
    expect(state).toEqual(JSON.parse(JSON.stringify(correlator.snapshot())))
  })

  it('moves the entry rows of the previous version (a row per entry) to chunks, naming the same values', async () => {
    const file = join(tempDir('nerve-checkpoint'), 'c.sqlite')
    const correlator = createCorrelator(config, undefined, { trackChanges: true })
    const store = createSqliteCheckpointStore(file)
    for (let i = 0; i < 300; i++)
      correlator.accept(edgeEvent({ id: `e${i}`, time: T0 + i, agent: `agent-${i % 30}` }))
    correlator.accept(coreEvent({ id: 'c1', time: T0 + 400, agent: 'agent-1' }))
    await store.save(2, { offset: 300, changes: correlator.takeChanges(), snapshot: correlator.snapshot })
    await store.close()
    // The previous version's layout: each entry's row without its seq, keyed by it, in correlate_buffer.
    const db = new Database(file)
    const insert = db.prepare('INSERT INTO correlate_buffer (partition, seq, entry) VALUES (?, ?, ?)')
    for (const { entries } of db.prepare('SELECT entries FROM correlate_chunks').all() as {
      entries: string
    }[])
      for (const [seq, ...row] of JSON.parse(entries) as [number, ...unknown[]][])
        insert.run(2, seq, JSON.stringify(row))
    db.exec('DELETE FROM correlate_chunks')
    db.close()

    const reopened = createSqliteCheckpointStore(file)
    expect((await reopened.load(2))?.state).toEqual(JSON.parse(JSON.stringify(correlator.snapshot())))
    await reopened.close()
    const after = new Database(file, { readonly: true })
    const count = (table: string) =>
      (after.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n
    expect([count('correlate_buffer'), count('correlate_chunks')]).toEqual([0, 2])
    after.close()
  })

  it('restores the incidents and revoke marks of a checkpoint that kept them in its meta row', async () => {
    const file = join(tempDir('nerve-checkpoint'), 'c.sqlite')
    const correlator = createCorrelator(config, undefined, { trackChanges: true })
    correlator.accept(edgeEvent({ id: 'e1', time: T0 }))
    correlator.accept(coreEvent({ id: 'c1', time: T0 + 500 }))
    const { incidents, revoked, entries, ...meta } = correlator.snapshot()
    expect(incidents).toHaveLength(1)
    // The layout before correlate_lists: meta, incidents and revoke marks in one row.
    const db = new Database(file)
    db.exec(`CREATE TABLE correlate_meta (partition INTEGER PRIMARY KEY, offset INTEGER NOT NULL, meta TEXT NOT NULL);
      CREATE TABLE correlate_entries (partition INTEGER NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
        entry TEXT NOT NULL, PRIMARY KEY (partition, id));`)
    db.prepare('INSERT INTO correlate_meta VALUES (?, ?, ?)').run(
      0,
      7,
      JSON.stringify({ ...meta, incidents, revoked }),
    )
    for (const e of entries)
      db.prepare('INSERT INTO correlate_entries VALUES (?, ?, ?, ?)').run(0, e.id, e.seq, JSON.stringify(e))
    db.close()
    const store = createSqliteCheckpointStore(file)
    const checkpoint = await store.load(0)
    expect(checkpoint?.state).toEqual(JSON.parse(JSON.stringify(correlator.snapshot())))
    await store.close()
  })

  it('moves the incidents of a checkpoint that kept them all in one row to a row per agent, losing none', async () => {
    const file = join(tempDir('nerve-checkpoint'), 'c.sqlite')
    const correlator = createCorrelator(config, undefined, { trackChanges: true })
    for (const agent of ['data-cleaner', 'other']) {
      correlator.accept(edgeEvent({ id: `e-${agent}`, time: T0, agent }))
      correlator.accept(coreEvent({ id: `c-${agent}`, time: T0 + 500, agent }))
    }
    const { incidents, revoked } = correlator.snapshot()
    expect(incidents.map((i) => i.agent)).toEqual(['data-cleaner', 'other'])
    const old = createSqliteCheckpointStore(file)
    await old.save(0, { offset: 3, changes: correlator.takeChanges(), snapshot: correlator.snapshot })
    await old.close()
    // The layout of the previous version: every incident and revoke mark in the correlate_lists row.
    const db = new Database(file)
    db.exec('DELETE FROM correlate_incidents')
    db.prepare('INSERT OR REPLACE INTO correlate_lists VALUES (?, ?)').run(
      0,
      JSON.stringify({ incidents, revoked }),
    )
    db.close()

    const store = createSqliteCheckpointStore(file)
    const restored = createCorrelator(config, (await store.load(0))?.state, { trackChanges: true })
    restored.takeChanges()
    restored.accept(coreEvent({ id: 'c2-other', time: T0 + 900, agent: 'other' }))
    const changes = restored.takeChanges()
    expect(changes.incidents?.map((c) => c.agent)).toEqual(['other'])
    await store.save(0, { offset: 4, changes, snapshot: restored.snapshot })
    await store.close()

    const reopened = createSqliteCheckpointStore(file)
    const state = (await reopened.load(0))?.state
    expect(state?.incidents).toEqual(JSON.parse(JSON.stringify(restored.snapshot().incidents)))
    expect(state?.incidents.map((i) => [i.agent, i.correlation_count])).toEqual([
      ['data-cleaner', 1],
      ['other', 2],
    ])
    await reopened.close()
  })

  it("rewrites an agent's incidents row and the partition's lists row in place, under the same rowid", async () => {
    const file = join(tempDir('nerve-checkpoint'), 'c.sqlite')
    const store = createSqliteCheckpointStore(file)
    const correlator = createCorrelator(config, undefined, { trackChanges: true })
    const rowids = () => {
      const db = new Database(file, { readonly: true })
      const rows = db
        .prepare<[], { table: string; rowid: number; text: string }>(
          `SELECT 'incidents' AS "table", rowid, incidents AS text FROM correlate_incidents WHERE agent = 'other'
           UNION ALL SELECT 'lists', rowid, lists FROM correlate_lists`,
        )
        .all()
      db.close()
      return rows
    }
    correlator.accept(edgeEvent({ id: 'e-1', time: T0, agent: 'other' }))
    correlator.accept(coreEvent({ id: 'c-1', time: T0 + 500, agent: 'other' }))
    const revoked = () => ({ ...correlator.takeChanges(), revoked: correlator.snapshot().revoked })
    await store.save(0, { offset: 1, changes: revoked(), snapshot: correlator.snapshot })
    const before = rowids()
    correlator.accept(coreEvent({ id: 'c-2', time: T0 + 900, agent: 'other' }))
    await store.save(0, { offset: 2, changes: revoked(), snapshot: correlator.snapshot })
    const after = rowids()
    expect(after.map((r) => [r.table, r.rowid])).toEqual(before.map((r) => [r.table, r.rowid]))
    expect(after.map((r) => r.table)).toEqual(['incidents', 'lists'])
    expect(JSON.parse(after[0]?.text as string)[0].correlation_count).toBe(2)
    await store.close()
    const reopened = createSqliteCheckpointStore(file)
    expect((await reopened.load(0))?.state.incidents).toEqual(
      JSON.parse(JSON.stringify(correlator.snapshot().incidents)),
    )
    await reopened.close()
  })

  it('rewrites the incidents of an agent only after a batch that changed them, and no other agent', () => {
    const correlator = createCorrelator(config, undefined, { trackChanges: true })
    correlator.accept(edgeEvent({ id: 'e1', time: T0 }))
    correlator.accept(edgeEvent({ id: 'o1', time: T0, agent: 'other' }))
    expect(correlator.takeChanges().incidents).toBeUndefined()
    correlator.accept(coreEvent({ id: 'c1', time: T0 + 500 }))
    expect(correlator.takeChanges().incidents).toMatchObject([
      { agent: 'data-cleaner', incidents: [{ correlation_count: 1 }] },
    ])
    correlator.accept(coreEvent({ id: 'oc1', time: T0 + 600, agent: 'other' }))
    expect(correlator.takeChanges().incidents?.map((c) => c.agent)).toEqual(['other'])
    correlator.accept(edgeEvent({ id: 't1', time: T0 + 700, agent: 'third' }))
    const changes = correlator.takeChanges()
    expect(changes.incidents).toBeUndefined()
    expect(changes.revoked).toBeUndefined()
  })
})
