// The embedded store: correlations, incidents and revoke outcomes on local disk (SQLite, WAL), written
// idempotently (a redelivered correlation or outcome is stored once) and served by the read API:
// GET /v1/correlations, /v1/incidents, /v1/incidents/:id, /v1/revokes (store-api.ts). Retention deletes
// whole incidents.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { errorCodeOf } from '../runtime/errors.ts'
import type { Route } from '../runtime/http-routes.ts'
import type { Metrics } from '../runtime/metrics.ts'
import { openSqliteFile } from '../runtime/sqlite-file.ts'
import type { Correlation, RevokeOutcome } from '../schemas/types.ts'
import { createIncidentCache, tallyOf } from './incident-tallies.ts'
import { storeRoutes } from './store-api.ts'
import { type IncidentBounds, incidentCorrelationsSql } from './store-filters.ts'
import { createStoreReads, type IncidentRow, type StoreReads } from './store-reads.ts'
import { type CorrelationHead, readCorrelationHead } from './store-record-fields.ts'
import { createStoreRetention, type RetentionDeleted } from './store-retention.ts'
import { type IndexBuild, storePageSize, upgradeStoreSchema } from './store-schema.ts'

export type { IndexBuild } from './store-schema.ts'

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
  deleteBefore(cutoff: number): RetentionDeleted
  /**
   * Builds the indexes a store of an earlier version lacks, when opened with `deferIndexes`: false when the
   * build failed (told to onIndexBuild, rolled back; the store reads and writes on without them).
   */
  buildIndexes(): boolean
  routes: Route[]
  /** Resolves once every write so far is on disk: await it before the bus commits the batch. */
  sync(): Promise<void>
  close(): Promise<void>
}

/** A correlation's columns: id, time, agent, incident, edge and core event ids, record, then edge_time. */
type CorrelationRow = [string, number, string, string, string, string, string, number?]

export function createCorrelationStore(
  config: { data_dir: string },
  deps: {
    metrics: Metrics
    onIncidentOpened?: (first: Correlation) => void
    /** An index an earlier version's store lacks, before and after its build (store-schema.ts). */
    onIndexBuild?: (build: IndexBuild) => void
    /**
     * Leave that build to buildIndexes(): the writer thread says it is ready first, so that HTTP does not
     * wait for it to listen (Falco and Falcosidekick do not retry).
     */
    deferIndexes?: boolean
    /**
     * Whether the texts it is given are nerve's own JSON.stringify (the embedded bus's correlations, written
     * by the correlate stage): only those are read for their fields (store-record-fields.ts). A text from
     * Kafka is whatever its producer wrote (a key repeated, whitespace, another order) and is parsed whole,
     * so that the row's columns are what JSON.parse, the revoke dispatcher and Elasticsearch read.
     */
    textsFromNerve?: boolean
  },
): CorrelationStore {
  const telemetry = deps.metrics.component('correlation_store')
  mkdirSync(config.data_dir, { recursive: true })
  const sqlite = openSqliteFile(join(config.data_dir, 'store.sqlite'), { pageSize: storePageSize })
  const db = sqlite.db
  const { layout, buildIndexes } = upgradeStoreSchema(db, deps)

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
    deleteIncident: db.prepare('DELETE FROM incidents WHERE id = ?'),
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
  }

  /** Stores `record` (the correlation's JSON text) as a correlation of `incidentId`; 0 changes: stored before. */
  const insertCorrelation = (c: CorrelationHead, incidentId: string, record: string) => {
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
   * The incidents this writer touched lately (incident-tallies.ts). Only valid while this connection alone
   * writes: emptied when another connection committed (PRAGMA data_version), when a write fails (its
   * changes rolled back) and by retention.
   */
  const incidents = createIncidentCache({
    row: (id) => sql.getIncidentRow.get(id),
    events: (row) => sql.incidentEvents.iterate(row),
  })
  let dataVersion = -1

  /**
   * Folds the incidents a correlation's incident replaces (group-incidents.ts: merged or renamed) into
   * it: their correlations and revoke outcomes move over and its row is rebuilt from them.
   */
  const foldMerged = (c: CorrelationHead) => {
    // The incident's own correlations, read while its row still bounds them.
    const into = sql.getIncidentRow.get(c.incident.id)
    const kept = into ? sql.moveCorrelations.all(into).map((r) => JSON.parse(r.record) as Correlation) : []
    let moved = 0
    for (const old of c.incident.merged ?? []) {
      const row = old === c.incident.id ? undefined : sql.getIncidentRow.get(old)
      if (!row) continue
      incidents.forget(old)
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
    incidents.forget(c.incident.id)
    const tally = tallyOf(undefined, c.agent.id)
    for (const record of kept.sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : 1))) tally.add(record)
    sql.deleteIncident.run(c.incident.id)
    sql.upsertIncident.run(tally.row(c.incident.id))
  }

  /** Writes the incidents this batch changed, before a fold reads or rewrites their rows. */
  const flush = (touched: Set<string>) => {
    for (const id of touched) {
      const tally = incidents.cached(id)
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
        // A text nerve wrote is read for the fields the writer needs (store-record-fields.ts), and parsed
        // whole only when they do not read plainly, or for the log line of an incident it opens.
        const c: CorrelationHead =
          typeof item === 'string'
            ? ((deps.textsFromNerve ? readCorrelationHead(item) : undefined) ??
              (JSON.parse(item) as Correlation))
            : item
        if (c.incident.merged?.length) {
          flush(touched)
          foldMerged(c)
        }
        // Loaded before the insert: the incident's stored events are those of its earlier correlations.
        const tally = incidents.tallyFor(c.incident.id, c.agent.id)
        const inserted = insertCorrelation(
          c,
          c.incident.id,
          typeof item === 'string' ? item : JSON.stringify(item),
        )
        if (inserted.changes === 0) continue
        if (tally.isEmpty()) opened.push(typeof item === 'string' ? (JSON.parse(item) as Correlation) : item)
        incidents.add(tally, c)
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
    if (version !== dataVersion) incidents.forgetAll()
    dataVersion = version
    try {
      return writeBatches(batches)
    } catch (err) {
      incidents.forgetAll()
      throw err
    } finally {
      incidents.trim()
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

  const deleteBefore = createStoreRetention(db, deps.metrics, incidents.forgetAll)

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
