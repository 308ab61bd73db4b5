// The embedded store's tables and indexes: created for a new store, and an earlier version's store
// upgraded in place (quick steps at open; the one slow index build left to buildIndexes when deferred).
import type { SqliteFile } from '../runtime/sqlite-file.ts'

/**
 * A correlation is stored once, by its id. The id is a hash, so an index keyed by it alone takes each
 * insert to a random page (dirtied, written whole to the WAL and copied again by the checkpointer): about
 * a sixth of the bytes the writer wrote per correlation. The key is (edge_time, id) instead: the id
 * names its edge event, whose id hashes its time, so the same id always comes with the same edge time and
 * the pair is unique exactly when the id is; and edge times arrive nearly in order, so inserts land on the
 * index's last pages. Stores created before keep `id TEXT PRIMARY KEY` and no edge_time column (see
 * keyLayoutOf): both are written and read by the same statements but the insert.
 *
 * The indexes in time order (correlations_time, incidents_last_seen, revoke_outcomes_time) ascend: the
 * newest entry, which nearly every insert is, goes at the index's end, where SQLite starts a new page
 * when the last is full. Descending, it went at the index's start, and each full first page was split
 * in two, left half empty: the correlations' time index took 1,660 pages of 2 KB for 20,000 correlations
 * at 48 % full, against 913 at 86 %, and its pages written to the WAL per correlation fell from 0.11 to
 * 0.07. The reads walk them backwards, newest first, as fast. Stores created before keep theirs.
 */
const schema = `
CREATE TABLE IF NOT EXISTS correlations (
  id TEXT NOT NULL, time INTEGER NOT NULL, edge_time INTEGER NOT NULL, agent_id TEXT NOT NULL,
  incident_id TEXT NOT NULL, edge_event_id TEXT NOT NULL, core_event_id TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS correlations_time ON correlations (time, id);
CREATE INDEX IF NOT EXISTS correlations_agent ON correlations (agent_id, time DESC, id DESC);
CREATE TABLE IF NOT EXISTS incidents (
  id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
  correlations INTEGER NOT NULL, edge_events INTEGER NOT NULL, core_events INTEGER NOT NULL,
  max_score INTEGER NOT NULL, rules TEXT NOT NULL, actions TEXT NOT NULL,
  falco_rules TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS incidents_last_seen ON incidents (last_seen, id);
CREATE TABLE IF NOT EXISTS revoke_outcomes (
  id TEXT PRIMARY KEY, decision_id TEXT NOT NULL, incident_id TEXT NOT NULL, agent_id TEXT NOT NULL,
  status TEXT NOT NULL, time INTEGER NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS revoke_outcomes_time ON revoke_outcomes (time, id);
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
export const storePageSize = 2048

/**
 * Stores written before this version had two indexes keyed by (incident, edge or core event), probed for
 * every correlation to count an incident's distinct events (the writer keeps those ids in memory now,
 * incident-tallies.ts), and, until the version after, one keyed by (incident, time, id), replaced by
 * incidentCorrelationsSql. Dropping an index is quick whatever the store's size.
 */
function dropIncidentIndexes(db: SqliteFile['db']): void {
  db.exec(`DROP INDEX IF EXISTS correlations_incident_edge;
    DROP INDEX IF EXISTS correlations_incident_core;
    DROP INDEX IF EXISTS correlations_incident;`)
}

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

/**
 * An index a store of an earlier version lacks, built once (outcomeStatusIndex): before its build, after it
 * (`ms`), or once it failed (`failed`: SQLite's code, such as SQLITE_BUSY or SQLITE_FULL; `ms`: how long the
 * failed build ran).
 */
export type IndexBuild = { index: string; rows: number; ms?: number; failed?: string }

/**
 * The index of an incident's outcomes per status (the detail, the status filter): a store of an earlier
 * version has none, and building it reads every outcome (about 6 s per million), the store's writes
 * waiting meanwhile. `onBuild` hears of it before and after (`ms`), so the wait is told, once. Until it
 * exists the same reads use revoke_outcomes_incident: the same answers, slower for a flooded incident.
 * A build that fails (another connection holds the write lock, a full disk) is rolled back whole, told
 * and not thrown: the caller may try again. Whether the index exists now.
 */
function outcomeStatusIndex(db: SqliteFile['db'], onBuild?: (build: IndexBuild) => void): boolean {
  const index = 'revoke_outcomes_incident_status'
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?").get(index)
  if (exists) return true
  const rows = (db.prepare('SELECT count(*) AS n FROM revoke_outcomes').get() as { n: number }).n
  const started = performance.now()
  if (rows > 0) onBuild?.({ index, rows })
  try {
    db.exec(`CREATE INDEX ${index} ON revoke_outcomes (incident_id, status, time DESC, id DESC)`)
  } catch (err) {
    const failed = String((err as { code?: unknown }).code ?? 'unknown')
    onBuild?.({ index, rows, failed, ms: Math.round(performance.now() - started) })
    return false
  }
  if (rows > 0) onBuild?.({ index, rows, ms: Math.round(performance.now() - started) })
  return true
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

/**
 * Creates the store's tables or upgrades an earlier version's. `deferIndexes`: the slow index build
 * (outcomeStatusIndex) is left to the returned buildIndexes, which says whether the index exists now.
 */
export function upgradeStoreSchema(
  db: SqliteFile['db'],
  options: { onIndexBuild?: (build: IndexBuild) => void; deferIndexes?: boolean },
): { layout: 'edge_time' | 'id'; buildIndexes: () => boolean } {
  db.exec(schema)
  const buildIndexes = () => outcomeStatusIndex(db, options.onIndexBuild)
  if (!options.deferIndexes) buildIndexes()
  addFalcoRulesColumn(db)
  dropIncidentIndexes(db)
  agentIncidentsIndex(db)
  return { layout: keyLayoutOf(db), buildIndexes }
}
