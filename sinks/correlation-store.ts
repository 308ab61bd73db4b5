// The embedded store: correlations, incidents and revoke outcomes on local disk (SQLite, WAL), written
// idempotently (a redelivered correlation or outcome is stored once) and served by the read API:
// GET /v1/correlations, /v1/incidents, /v1/incidents/:id, /v1/revokes (store-api.ts). Retention deletes
// whole incidents.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { errorCodeOf } from '../runtime/errors.ts'
import type { Route } from '../runtime/http-server.ts'
import type { Metrics } from '../runtime/metrics.ts'
import { openSqliteFile, type SqliteFile } from '../runtime/sqlite-file.ts'
import type { Correlation, RevokeOutcome } from '../schemas/types.ts'
import { storeRoutes } from './store-api.ts'
import { type IncidentBounds, incidentCorrelationsSql } from './store-filters.ts'
import { createStoreReads, type IncidentRow, type StoreReads } from './store-reads.ts'

export type Incident = {
  id: string
  agent_id: string
  /** Earliest edge or core event time of its correlations, epoch ms. */
  first_seen: number
  /** Latest correlation time, epoch ms. */
  last_seen: number
  correlations: number
  edge_events: number
  core_events: number
  max_score: number
  rules: string[]
  /** The Falco rules of its edge events (the first 64 distinct). */
  falco_rules: string[]
  actions: string[]
  /** The incident's most telling revoke outcome: a delivery or decision to send before a suppression. */
  revoke: Pick<RevokeOutcome, 'decision_id' | 'status' | 'reason' | 'time'> | null
}

/**
 * A correlation to store, or its JSON text as the bus carried it (SubscribeOptions.encoded): parsed for the
 * incident's counts and stored as it is, so the writer neither receives a structured clone of it nor
 * serializes it again.
 */
export type CorrelationItem = Correlation | string

export type CorrelationStore = StoreReads & {
  writeCorrelations(batch: readonly CorrelationItem[]): {
    stored: number
    duplicates: number
    opened: Correlation[]
  }
  /** Consumer batches that arrived together, in one transaction: a result per batch, in their order. */
  writeCorrelationBatches(batches: readonly (readonly CorrelationItem[])[]): {
    stored: number
    duplicates: number
    opened: Correlation[]
  }[]
  writeOutcomes(batch: readonly RevokeOutcome[]): { stored: number; duplicates: number }
  /**
   * Retention: deletes every incident whose last correlation is before `cutoff` (epoch ms), with its
   * correlations and revoke outcomes, and outcomes before it that name no stored incident. Whole incidents
   * go, so the counts of one still open never lose the correlations they were made from.
   */
  deleteBefore(cutoff: number): { incidents: number; correlations: number; revoke_outcomes: number }
  /** Builds the indexes a store of an earlier version lacks, when opened with `deferIndexes`. */
  buildIndexes(): void
  routes: Route[]
  /** Resolves once every write so far is on disk: await it before the bus commits the batch. */
  sync(): Promise<void>
  close(): Promise<void>
}

/**
 * A correlation is stored once, by its id. The id is a hash, so an index keyed by it alone takes each
 * insert to a random page (dirtied, written whole to the WAL and copied again by the checkpointer): about
 * a sixth of the bytes the writer wrote per correlation. The key is (edge_time, id) instead: the id
 * names its edge event, whose id hashes its time, so the same id always comes with the same edge time and
 * the pair is unique exactly when the id is; and edge times arrive nearly in order, so inserts land on the
 * index's last pages. Stores created before keep `id TEXT PRIMARY KEY` and no edge_time column (see
 * keyLayoutOf): both are written and read by the same statements but the insert.
 */
const schema = `
CREATE TABLE IF NOT EXISTS correlations (
  id TEXT NOT NULL, time INTEGER NOT NULL, edge_time INTEGER NOT NULL, agent_id TEXT NOT NULL,
  incident_id TEXT NOT NULL, edge_event_id TEXT NOT NULL, core_event_id TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS correlations_time ON correlations (time DESC, id DESC);
CREATE INDEX IF NOT EXISTS correlations_agent ON correlations (agent_id, time DESC, id DESC);
CREATE TABLE IF NOT EXISTS incidents (
  id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
  correlations INTEGER NOT NULL, edge_events INTEGER NOT NULL, core_events INTEGER NOT NULL,
  max_score INTEGER NOT NULL, rules TEXT NOT NULL, actions TEXT NOT NULL,
  falco_rules TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS incidents_last_seen ON incidents (last_seen DESC, id DESC);
CREATE TABLE IF NOT EXISTS revoke_outcomes (
  id TEXT PRIMARY KEY, decision_id TEXT NOT NULL, incident_id TEXT NOT NULL, agent_id TEXT NOT NULL,
  status TEXT NOT NULL, time INTEGER NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS revoke_outcomes_time ON revoke_outcomes (time DESC, id DESC);
CREATE INDEX IF NOT EXISTS revoke_outcomes_incident ON revoke_outcomes (incident_id, time DESC);
CREATE TABLE IF NOT EXISTS incident_aliases (id TEXT PRIMARY KEY, into_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS incident_aliases_into ON incident_aliases (into_id);
`

/**
 * Page size of a store this version creates. A correlation record is about 2 KB: two never fit in a 4 KB
 * page, so each took one and left about half of it empty, written twice (WAL, then checkpoint). In 2 KB
 * pages a record's head sits in its table page and the rest fills one overflow page: the pipeline bench's
 * store file is 40 % smaller and about 30 % fewer bytes are written per correlation. A store created
 * before keeps its 4 KB pages (SQLite changes a file's page size only by rewriting it whole).
 */
const storePageSize = 2048

/** Distinct Falco rule names kept per incident: the watched agent may name its alerts anything. */
const maxFalcoRules = 64

/**
 * Stores written before this version had two indexes keyed by (incident, edge or core event), probed for
 * every correlation to count an incident's distinct events (the writer keeps those ids in memory now,
 * incidentCache), and, until the version after, one keyed by (incident, time, id), replaced by
 * incidentCorrelationsSql. Dropping an index is quick whatever the store's size.
 */
function dropIncidentIndexes(db: SqliteFile['db']): void {
  db.exec(`DROP INDEX IF EXISTS correlations_incident_edge;
    DROP INDEX IF EXISTS correlations_incident_core;
    DROP INDEX IF EXISTS correlations_incident;`)
}

/** A correlation's columns: id, time, agent, incident, edge and core event ids, record, then edge_time. */
type CorrelationRow = [string, number, string, string, string, string, string, number?]

/**
 * Whether the correlations are keyed by (edge_time, id) (stores created by this version) or by their id
 * alone (earlier ones, left as they are: rebuilding a large table would hold the start-up for minutes).
 */
function keyLayoutOf(db: SqliteFile['db']): 'edge_time' | 'id' {
  const columns = db.prepare<[], { name: string }>('PRAGMA table_info(correlations)').all()
  if (!columns.some((c) => c.name === 'edge_time')) return 'id'
  db.exec('CREATE UNIQUE INDEX IF NOT EXISTS correlations_key ON correlations (edge_time, id)')
  return 'edge_time'
}

/**
 * An agent's incidents, newest first, by (agent, last_seen, id): a page of them reads its rows in order
 * and stops at its limit. Indexed by the agent alone, each page read every incident the agent ever had,
 * each with its revoke subquery, and sorted them: an agent active now and then opens a new incident each
 * time (one per incident_gap at most), thousands over months while retention is unset (the default), and
 * the console's agent view reads its first page every 5 s (10,000 incidents: 45–130 ms per page, against
 * under 2; measured when reads ran on the main thread, now on the reader thread, store-reader-thread.ts). The entry moved at each write of an incident's counts costs no measurable
 * CPU per correlation (20,000 correlations of 1,000 agents in batches of 200: 49.6–55.7 µs either way).
 * A store written while the index held the agent alone gets this one back (one row per incident: quick).
 */
function agentIncidentsIndex(db: SqliteFile['db']): void {
  const columns = db.prepare<[], { name: string }>(`PRAGMA index_info('incidents_agent')`).all()
  if (columns.length === 1) db.exec('DROP INDEX incidents_agent')
  db.exec('CREATE INDEX IF NOT EXISTS incidents_agent ON incidents (agent_id, last_seen DESC, id DESC)')
}

/** An index a store of an earlier version lacks, built once (outcomeStatusIndex). */
export type IndexBuild = { index: string; rows: number; ms?: number }

/**
 * The index of an incident's outcomes per status (the detail, the status filter): a store of an earlier
 * version has none, and building it reads every outcome (about 6 s per million), the store's writes
 * waiting meanwhile. `onBuild` hears of it before and after (`ms`), so the wait is told, once. Until it
 * exists the same reads use revoke_outcomes_incident: the same answers, slower for a flooded incident.
 */
function outcomeStatusIndex(db: SqliteFile['db'], onBuild?: (build: IndexBuild) => void): void {
  const index = 'revoke_outcomes_incident_status'
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?").get(index)
  if (exists) return
  const rows = (db.prepare('SELECT count(*) AS n FROM revoke_outcomes').get() as { n: number }).n
  const started = performance.now()
  if (rows > 0) onBuild?.({ index, rows })
  db.exec(`CREATE INDEX ${index} ON revoke_outcomes (incident_id, status, time DESC, id DESC)`)
  if (rows > 0) onBuild?.({ index, rows, ms: Math.round(performance.now() - started) })
}

/** Stores written before incidents kept their Falco rules gain the column, filled from their correlations. */
function addFalcoRulesColumn(db: SqliteFile['db']): void {
  const columns = db.prepare<[], { name: string }>('PRAGMA table_info(incidents)').all()
  if (columns.some((c) => c.name === 'falco_rules')) return
  db.exec(`ALTER TABLE incidents ADD COLUMN falco_rules TEXT NOT NULL DEFAULT '[]';
    UPDATE incidents SET falco_rules = (SELECT json_group_array(DISTINCT json_extract(c.record, '$.edge.rule'))
      FROM correlations c WHERE c.agent_id = incidents.agent_id AND c.time >= incidents.first_seen
      AND c.time <= incidents.last_seen AND c.incident_id = incidents.id);`)
}

export function createCorrelationStore(
  config: { data_dir: string },
  deps: {
    metrics: Metrics
    onIncidentOpened?: (first: Correlation) => void
    /** An index an earlier version's store lacks, before and after its build (outcomeStatusIndex). */
    onIndexBuild?: (build: IndexBuild) => void
    /**
     * Leave that build to buildIndexes(): the writer thread says it is ready first, so that HTTP does not
     * wait for it to listen (Falco and Falcosidekick do not retry).
     */
    deferIndexes?: boolean
  },
): CorrelationStore {
  const telemetry = deps.metrics.component('correlation_store')
  const retentionDeleted = deps.metrics.counter(
    'nerve_store_retention_deleted_rows_total',
    'Rows the embedded store deleted by retention (sinks.store.retention).',
    ['table'],
  )
  mkdirSync(config.data_dir, { recursive: true })
  const sqlite = openSqliteFile(join(config.data_dir, 'store.sqlite'), { pageSize: storePageSize })
  const db = sqlite.db
  db.exec(schema)
  const buildIndexes = () => outcomeStatusIndex(db, deps.onIndexBuild)
  if (!deps.deferIndexes) buildIndexes()
  addFalcoRulesColumn(db)
  dropIncidentIndexes(db)
  agentIncidentsIndex(db)
  const layout = keyLayoutOf(db)

  const reads = createStoreReads(db)
  const sql = {
    // Stores keyed by the id alone have no edge_time column: their insert leaves it out.
    insertCorrelation: db.prepare<CorrelationRow>(
      `INSERT OR IGNORE INTO correlations (id, time, agent_id, incident_id, edge_event_id, core_event_id,
       record${layout === 'edge_time' ? ', edge_time' : ''}) VALUES (?, ?, ?, ?, ?, ?, ?${layout === 'edge_time' ? ', ?' : ''})`,
    ),
    incidentEvents: db.prepare<[IncidentBounds], { edge_event_id: string; core_event_id: string }>(
      `SELECT edge_event_id, core_event_id FROM correlations WHERE ${incidentCorrelationsSql}`,
    ),
    getIncidentRow: db.prepare<[string], IncidentRow>('SELECT *, NULL AS revoke FROM incidents WHERE id = ?'),
    upsertIncident: db.prepare(
      `INSERT INTO incidents (id, agent_id, first_seen, last_seen, correlations, edge_events,
       core_events, max_score, rules, actions, falco_rules) VALUES (@id, @agent_id, @first_seen, @last_seen,
       @correlations, @edge_events, @core_events, @max_score, @rules, @actions, @falco_rules)
       ON CONFLICT (id) DO UPDATE SET first_seen = excluded.first_seen, last_seen = excluded.last_seen,
       correlations = excluded.correlations, edge_events = excluded.edge_events,
       core_events = excluded.core_events, max_score = excluded.max_score, rules = excluded.rules,
       actions = excluded.actions, falco_rules = excluded.falco_rules`,
    ),
    /** An incident on disk whose rule, action and Falco rule lists did not grow: its counts and bounds. */
    updateIncidentCounts: db.prepare<[number, number, number, number, number, number, string]>(
      `UPDATE incidents SET first_seen = ?, last_seen = ?, correlations = ?, edge_events = ?, core_events = ?,
       max_score = ? WHERE id = ?`,
    ),
    insertOutcome: db.prepare(
      `INSERT OR IGNORE INTO revoke_outcomes (id, decision_id, incident_id, agent_id, status, time, record)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    expiredIncidents: db.prepare<[number, number], IncidentBounds>(
      'SELECT id, agent_id, first_seen, last_seen FROM incidents WHERE last_seen < ? LIMIT ?',
    ),
    deleteIncident: db.prepare('DELETE FROM incidents WHERE id = ?'),
    deleteIncidentCorrelations: db.prepare<[IncidentBounds]>(
      `DELETE FROM correlations WHERE ${incidentCorrelationsSql}`,
    ),
    deleteIncidentOutcomes: db.prepare('DELETE FROM revoke_outcomes WHERE incident_id = ?'),
    /** Every correlation of an incident, for a fold (at most the per-rule bound of each rule). */
    moveCorrelations: db.prepare<[IncidentBounds], { row: number; record: string }>(
      `SELECT rowid AS row, record FROM correlations WHERE ${incidentCorrelationsSql}`,
    ),
    /**
     * A correlation by its rowid (both layouts have one): no index holds the id alone, and looking it up
     * by (incident_id, id) scanned the incident's rows for each one moved, quadratic in the incident's size.
     */
    setCorrelationIncident: db.prepare('UPDATE correlations SET incident_id = ?, record = ? WHERE rowid = ?'),
    moveOutcomes: db.prepare('UPDATE revoke_outcomes SET incident_id = ? WHERE incident_id = ?'),
    /**
     * The incident a folded id now lives in: a revoke outcome decided under the old id (a delivery's
     * result comes minutes later, after retries) is filed under it. One row per folded id, pointed at
     * the newest survivor when that is folded in turn; retention drops those of deleted incidents.
     */
    aliasOf: db.prepare<[string], { into_id: string }>('SELECT into_id FROM incident_aliases WHERE id = ?'),
    moveAliases: db.prepare('UPDATE incident_aliases SET into_id = ? WHERE into_id = ?'),
    addAlias: db.prepare('INSERT OR REPLACE INTO incident_aliases (id, into_id) VALUES (?, ?)'),
    dropAlias: db.prepare('DELETE FROM incident_aliases WHERE id = ?'),
    deleteOrphanAliases: db.prepare(
      'DELETE FROM incident_aliases WHERE into_id NOT IN (SELECT id FROM incidents)',
    ),
    deleteOrphanOutcomes: db.prepare(
      'DELETE FROM revoke_outcomes WHERE time < ? AND incident_id NOT IN (SELECT id FROM incidents)',
    ),
  }

  /** Stores `record` (the correlation's JSON text) as a correlation of `incidentId`; 0 changes: stored before. */
  const insertCorrelation = (c: Correlation, incidentId: string, record: string) => {
    const row: CorrelationRow = [
      c.id,
      c.time,
      c.agent.id,
      incidentId,
      c.edge.event_id,
      c.core.event_id,
      record,
    ]
    if (layout === 'edge_time') row.push(c.edge.time)
    return sql.insertCorrelation.run(...row)
  }

  /**
   * The incidents this writer touched lately, as their rows stand on disk plus the edge and core event
   * ids of their correlations: a batch reads an incident's row and ids once, when it is not here, instead
   * of reading the row per batch and probing two (incident, event) indexes per correlation. Bounded by
   * the ids it holds (least recently used incidents go first). Only valid while this connection alone
   * writes: emptied when another connection committed (PRAGMA data_version), when a write fails (its
   * changes rolled back) and by retention.
   */
  const cache = new Map<string, IncidentTally>()
  let cachedIds = 0
  let dataVersion = -1
  const forget = (id: string) => {
    const tally = cache.get(id)
    if (!tally) return
    cachedIds -= tally.weight()
    cache.delete(id)
  }
  const forgetAll = () => {
    cache.clear()
    cachedIds = 0
  }
  const trimCache = () => {
    for (const [id] of cache) {
      if (cachedIds <= maxCachedIds) break
      forget(id)
    }
  }
  const tallyFor = (incidentId: string, agentId: string) => {
    const cached = cache.get(incidentId)
    if (cached) {
      // Most recently used last.
      cache.delete(incidentId)
      cache.set(incidentId, cached)
      return cached
    }
    const row = sql.getIncidentRow.get(incidentId)
    const tally = tallyOf(row, agentId)
    if (row) for (const r of sql.incidentEvents.iterate(row)) tally.seen(r.edge_event_id, r.core_event_id)
    cache.set(incidentId, tally)
    cachedIds += tally.weight()
    return tally
  }

  /**
   * Folds the incidents a correlation's incident replaces (group-incidents.ts: merged or renamed) into
   * it: their correlations and revoke outcomes move over and its row is rebuilt from them.
   */
  const foldMerged = (c: Correlation) => {
    // The incident's own correlations, read while its row still bounds them.
    const into = sql.getIncidentRow.get(c.incident.id)
    const kept = into ? sql.moveCorrelations.all(into).map((r) => JSON.parse(r.record) as Correlation) : []
    let moved = 0
    for (const old of c.incident.merged ?? []) {
      const row = old === c.incident.id ? undefined : sql.getIncidentRow.get(old)
      if (!row) continue
      forget(old)
      for (const r of sql.moveCorrelations.all(row)) {
        const record = JSON.parse(r.record) as Correlation
        record.incident = { ...record.incident, id: c.incident.id }
        sql.setCorrelationIncident.run(c.incident.id, JSON.stringify(record), r.row)
        kept.push(record)
        moved++
      }
      sql.moveOutcomes.run(c.incident.id, old)
      sql.moveAliases.run(c.incident.id, old)
      sql.addAlias.run(old, c.incident.id)
      sql.deleteIncident.run(old)
    }
    // An id folded away earlier that names this incident again (never, as ids go: none is reused) would
    // otherwise send its outcomes elsewhere.
    sql.dropAlias.run(c.incident.id)
    if (moved === 0) return
    // Its row, rebuilt from every correlation it now holds, in time order (rules and Falco rules keep
    // the order they were first seen in).
    forget(c.incident.id)
    const tally = tallyOf(undefined, c.agent.id)
    for (const record of kept.sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : 1))) tally.add(record)
    sql.deleteIncident.run(c.incident.id)
    sql.upsertIncident.run(tally.row(c.incident.id))
  }

  /** Writes the incidents this batch changed, before a fold reads or rewrites their rows. */
  const flush = (touched: Set<string>) => {
    for (const id of touched) {
      const tally = cache.get(id)
      if (!tally) continue
      // The whole row when its lists grew (or it is not on disk after all), else its counts alone.
      if (!tally.listsWritten() || sql.updateIncidentCounts.run(...tally.counts(id)).changes === 0)
        sql.upsertIncident.run(tally.row(id))
      tally.written()
    }
    touched.clear()
  }

  /**
   * One transaction per consumer batch, and per incident one write however many of the batch's
   * correlations join it. A redelivered correlation is found by its insert, which changes no row.
   * `opened`: the first correlation of each incident this batch opened, for the "Incident opened." log line.
   */
  const writeBatches = db.transaction((batches: readonly (readonly CorrelationItem[])[]) => {
    const touched = new Set<string>()
    const results = batches.map((batch) => {
      const opened: Correlation[] = []
      let stored = 0
      for (const item of batch) {
        const c = typeof item === 'string' ? (JSON.parse(item) as Correlation) : item
        if (c.incident.merged?.length) {
          flush(touched)
          foldMerged(c)
        }
        // Loaded before the insert: the incident's stored events are those of its earlier correlations.
        const tally = tallyFor(c.incident.id, c.agent.id)
        const inserted = insertCorrelation(
          c,
          c.incident.id,
          typeof item === 'string' ? item : JSON.stringify(c),
        )
        if (inserted.changes === 0) continue
        if (tally.isEmpty()) opened.push(c)
        cachedIds += tally.add(c)
        touched.add(c.incident.id)
        stored++
      }
      return { stored, duplicates: batch.length - stored, opened }
    })
    flush(touched)
    return results
  })
  const writeCorrelationBatches = (batches: readonly (readonly CorrelationItem[])[]) => {
    const version = db.pragma('data_version', { simple: true }) as number
    if (version !== dataVersion) forgetAll()
    dataVersion = version
    try {
      return writeBatches(batches)
    } catch (err) {
      forgetAll()
      throw err
    } finally {
      trimCache()
    }
  }

  const writeOutcomes = db.transaction((batch: readonly RevokeOutcome[]) => {
    let stored = 0
    for (const o of batch) {
      const r = sql.insertOutcome.run(
        o.id,
        o.decision_id,
        sql.aliasOf.get(o.incident_id)?.into_id ?? o.incident_id,
        o.agent_id,
        o.status,
        o.time,
        JSON.stringify(o),
      )
      stored += r.changes
    }
    return { stored, duplicates: batch.length - stored }
  })

  /** A failure is counted and thrown (a failed write: the bus delivers the batch again). */
  const recordErrors = <T>(stage: 'write' | 'retention', work: () => T): T => {
    try {
      return work()
    } catch (err) {
      telemetry.error(errorCodeOf(err), stage)
      throw err
    }
  }

  /** One transaction per 500 incidents, so that retention never holds the store's writers up for long. */
  const deleteIncidents = db.transaction((cutoff: number) => {
    const deleted = { incidents: 0, correlations: 0, revoke_outcomes: 0 }
    for (const incident of sql.expiredIncidents.all(cutoff, 500)) {
      deleted.correlations += sql.deleteIncidentCorrelations.run(incident).changes
      deleted.revoke_outcomes += sql.deleteIncidentOutcomes.run(incident.id).changes
      deleted.incidents += sql.deleteIncident.run(incident.id).changes
    }
    return deleted
  })
  const deleteBefore = (cutoff: number) => {
    forgetAll()
    const total = { incidents: 0, correlations: 0, revoke_outcomes: 0 }
    for (;;) {
      const deleted = deleteIncidents(cutoff)
      total.incidents += deleted.incidents
      total.correlations += deleted.correlations
      total.revoke_outcomes += deleted.revoke_outcomes
      if (deleted.incidents < 500) break
    }
    total.revoke_outcomes += sql.deleteOrphanOutcomes.run(cutoff).changes
    sql.deleteOrphanAliases.run()
    for (const [table, count] of Object.entries(total)) if (count > 0) retentionDeleted.inc({ table }, count)
    return total
  }

  const store: Omit<CorrelationStore, 'routes'> = {
    writeCorrelations(batch) {
      return store.writeCorrelationBatches([batch])[0] as ReturnType<CorrelationStore['writeCorrelations']>
    },
    writeCorrelationBatches(batches) {
      for (const batch of batches) telemetry.received(batch.length)
      const results = recordErrors('write', () => writeCorrelationBatches(batches))
      for (const result of results) {
        for (const c of result.opened) deps.onIncidentOpened?.(c)
        telemetry.sent(result.stored)
        if (result.duplicates > 0) telemetry.discarded(result.duplicates, 'duplicate')
      }
      return results
    },
    writeOutcomes(batch) {
      telemetry.received(batch.length)
      const result = recordErrors('write', () => writeOutcomes(batch))
      telemetry.sent(result.stored)
      if (result.duplicates > 0) telemetry.discarded(result.duplicates, 'duplicate')
      return result
    },
    ...reads,
    deleteBefore: (cutoff) => recordErrors('retention', () => deleteBefore(cutoff)),
    buildIndexes,
    sync: sqlite.sync,
    close: sqlite.close,
  }
  return { ...store, routes: storeRoutes(store) }
}

type IncidentTally = ReturnType<typeof tallyOf>

/** Edge and core event ids the writer keeps in memory for the incidents it touched lately. */
const maxCachedIds = 200_000

/**
 * An incident's row as the writer keeps it: counts, bounds, and the edge and core event ids of its
 * correlations, so that "a new event of the incident" needs no index probe.
 */
function tallyOf(row: IncidentRow | undefined, agentId: string) {
  const edges = new Set<string>()
  const cores = new Set<string>()
  const rules = new Set<string>(row ? (JSON.parse(row.rules) as string[]) : [])
  const actions = new Set<string>(row ? (JSON.parse(row.actions) as string[]) : [])
  const falcoRules = new Set<string>(row ? (JSON.parse(row.falco_rules) as string[]) : [])
  /** Whether its row on disk holds the rule, action and Falco rule lists as they are here. */
  let listsOnDisk = row !== undefined
  const addTo = (set: Set<string>, value: string) => {
    if (set.has(value)) return
    set.add(value)
    listsOnDisk = false
  }
  const t = {
    agent_id: row?.agent_id ?? agentId,
    first_seen: row?.first_seen ?? Number.POSITIVE_INFINITY,
    last_seen: row?.last_seen ?? Number.NEGATIVE_INFINITY,
    correlations: row?.correlations ?? 0,
    edge_events: row?.edge_events ?? 0,
    core_events: row?.core_events ?? 0,
    max_score: row?.max_score ?? 0,
  }
  return {
    /** No correlation yet: the incident opens with the next one. */
    isEmpty: () => t.correlations === 0,
    /** The ids it holds, for the cache's bound. */
    weight: () => 1 + edges.size + cores.size,
    /** A stored correlation's events, as the incident is loaded. */
    seen(edge: string, core: string) {
      edges.add(edge)
      cores.add(core)
    },
    /** Counts a new correlation in; returns how many ids it added. */
    add(c: Correlation): number {
      const before = edges.size + cores.size
      if (!edges.has(c.edge.event_id)) {
        edges.add(c.edge.event_id)
        t.edge_events++
      }
      if (!cores.has(c.core.event_id)) {
        cores.add(c.core.event_id)
        t.core_events++
      }
      t.first_seen = Math.min(t.first_seen, c.edge.time, c.core.time)
      t.last_seen = Math.max(t.last_seen, c.time)
      t.correlations++
      t.max_score = Math.max(t.max_score, c.score)
      addTo(rules, c.rule.id)
      addTo(actions, c.core.action)
      if (falcoRules.size < maxFalcoRules) addTo(falcoRules, c.edge.rule)
      return edges.size + cores.size - before
    },
    /** Its row is on disk with these lists: only its counts and bounds need writing (updateIncidentCounts). */
    listsWritten: () => listsOnDisk,
    /** Its row was written in the current transaction (a failed one empties the cache). */
    written() {
      listsOnDisk = true
    },
    counts: (id: string): [number, number, number, number, number, number, string] => [
      t.first_seen,
      t.last_seen,
      t.correlations,
      t.edge_events,
      t.core_events,
      t.max_score,
      id,
    ],
    row: (id: string) => ({
      id,
      ...t,
      rules: JSON.stringify([...rules]),
      actions: JSON.stringify([...actions]),
      falco_rules: JSON.stringify([...falcoRules]),
    }),
  }
}
