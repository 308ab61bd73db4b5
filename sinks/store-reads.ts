// The embedded store's reads (correlation-store.ts's tables): the lists of the read API, one page and its
// total at a time, and an incident's detail. They take a connection, so that the same reads run on the
// store's own (tests, tools) or on the reader thread's read-only one (store-reader.worker.mjs), which is
// the one `nerve run` serves the API from.
import type Database from 'better-sqlite3'
import type { ListQuery } from '../runtime/list-query.ts'
import type { Correlation, RevokeOutcome } from '../schemas/types.ts'
import type { Incident } from './correlation-store.ts'
import { createSteppedScans, type Scan, type SteppedScanOptions } from './stepped-scan.ts'
import {
  type IncidentBounds,
  incidentOnly,
  listShape,
  type RevokeStatus,
  revokeStatuses,
  type StoreList,
  storeScan,
  tellingOutcomeSql,
} from './store-filters.ts'

export type IncidentRow = Omit<Incident, 'rules' | 'falco_rules' | 'actions' | 'revoke'> & {
  rules: string
  falco_rules: string
  actions: string
  revoke: string | null
}

/** An incident's columns with its most telling revoke outcome (the order the `status` filter uses). */
export const incidentColumns = `i.*, ${tellingOutcomeSql(
  'i.id',
  `json_object('decision_id', o.decision_id, 'status', o.status, 'reason', o.reason, 'time', o.time)`,
)} AS revoke`

/**
 * Correlations an incident's detail carries, newest first: a flooding agent's incident gathers tens of
 * thousands, and the console reloads the detail every 5 s. The rest: GET /v1/correlations?incident=….
 */
export const maxIncidentCorrelations = 1000

/**
 * Revoke outcomes an incident's detail carries of each status, newest first. Each correlation of an
 * incident that the rate limits hold back records one (`suppressed`, `rate_limited_agent` or
 * `rate_limited_global`; revoke-decisions.ts counts the other suppressions without a row), so the watched
 * agent decides how many its own incident has; a cap on the newest of all would let it push the revoke that went ahead out of
 * view behind them. Per status, the few that matter (pending, sent, failed, dry_run: one decision per
 * incident and round) are always shown beside the newest held-back ones. The rest:
 * GET /v1/revokes?incident=…&status=….
 */
export const maxIncidentRevokesPerStatus = 20

/**
 * Most outcomes of one status an incident's detail counts: past it the count says maxIncidentRevokeCount
 * and that there are more (revokeCountsCapped). Counting them all read as many rows as the watched agent
 * had held back (300,000: 125–197 ms), at each 5 s refresh of the console.
 */
export const maxIncidentRevokeCount = 10_000

/** An incident's detail: its newest correlations, and its revoke outcomes as maxIncidentRevokesPerStatus says. */
export type IncidentDetail = {
  incident: Incident
  correlations: Correlation[]
  /** The newest of each status, newest first across them. */
  revokes: RevokeOutcome[]
  /** How many of each status the incident has, those not in `revokes` included, at most maxIncidentRevokeCount. */
  revokeCounts: Record<RevokeStatus, number>
  /** The statuses of which it has more than maxIncidentRevokeCount. */
  revokeCountsCapped: RevokeStatus[]
}

export type StoreReads = {
  correlations(query: ListQuery): Correlation[]
  incidents(query: ListQuery): Incident[]
  /** An incident with its newest `limit` correlations (at most, and by default, maxIncidentCorrelations). */
  incident(id: string, limit?: number): IncidentDetail | undefined
  revokes(query: ListQuery): RevokeOutcome[]
  /** How many items the list holds under the query's filters, whatever the page. */
  total(list: StoreList, query: ListQuery): number
}

export function createStoreReads(db: Database.Database, opts: SteppedScanOptions = {}): StoreReads {
  const scans = createSteppedScans(db, opts)
  const sql = {
    incident: db.prepare<[string], IncidentRow>(`SELECT ${incidentColumns} FROM incidents i WHERE i.id = ?`),
    bounds: db.prepare<[string], IncidentBounds>(
      'SELECT id, agent_id, first_seen, last_seen FROM incidents WHERE id = ?',
    ),
    incidentCorrelations: db.prepare<[string], { n: number }>(
      'SELECT coalesce((SELECT correlations FROM incidents WHERE id = ?), 0) AS n',
    ),
  }
  const scanOf = (table: StoreList, q: ListQuery) => {
    const incident = q.text.incident === undefined ? undefined : sql.bounds.get(q.text.incident)
    return storeScan(table, q, incident)
  }
  /** Newest first, one page of the query's filters (store-filters.ts). */
  const list = <Row>(table: StoreList, q: ListQuery) => {
    const scan = scanOf(table, q)
    const select = table === 'incidents' ? incidentColumns : `${listShape[table].alias}.record`
    return scan ? scans.rows<Row>(scan, select, q.limit) : []
  }
  /** Per status, in steps of (incident_id, status, time, id): its count, and its newest page. */
  const incidentRevokes = (
    id: string,
  ): Pick<IncidentDetail, 'revokes' | 'revokeCounts' | 'revokeCountsCapped'> => {
    const revokes: RevokeOutcome[] = []
    const revokeCounts = {} as Record<RevokeStatus, number>
    const revokeCountsCapped: RevokeStatus[] = []
    for (const status of revokeStatuses) {
      const scan: Scan = {
        table: 'revoke_outcomes',
        alias: 't',
        time: 'time',
        keys: [
          { column: 'incident_id', value: id },
          { column: 'status', value: status },
        ],
        checked: [],
        params: [],
      }
      const newest = records<RevokeOutcome>(scans.rows(scan, 't.record', maxIncidentRevokesPerStatus))
      revokes.push(...newest)
      // One past the cap says whether there are more.
      const count =
        newest.length < maxIncidentRevokesPerStatus
          ? newest.length
          : scans.rows(scan, '1', maxIncidentRevokeCount + 1).length
      revokeCounts[status] = Math.min(count, maxIncidentRevokeCount)
      if (count > maxIncidentRevokeCount) revokeCountsCapped.push(status)
    }
    revokes.sort((a, b) => b.time - a.time || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    return { revokes, revokeCounts, revokeCountsCapped }
  }
  return {
    correlations: (q) => records<Correlation>(list('correlations', q)),
    incidents: (q) => list<IncidentRow>('incidents', q).map(incidentOf),
    incident(id, limit = maxIncidentCorrelations) {
      const row = sql.incident.get(id)
      if (!row) return undefined
      // Its agent's range in correlations_agent, as incidentCorrelationsSql, in steps.
      const scan: Scan = {
        table: 'correlations',
        alias: 't',
        time: 'time',
        keys: [{ column: 'agent_id', value: row.agent_id }],
        since: row.first_seen,
        until: row.last_seen,
        checked: ['t.incident_id = ?'],
        params: [id],
      }
      return {
        incident: incidentOf(row),
        correlations: records<Correlation>(
          scans.rows(scan, 't.record', Math.min(limit, maxIncidentCorrelations)),
        ),
        ...incidentRevokes(id),
      }
    },
    revokes: (q) => records<RevokeOutcome>(list('revoke_outcomes', q)),
    total(table, q) {
      if (incidentOnly(table, q))
        return (sql.incidentCorrelations.get(q.text.incident ?? '') as { n: number }).n
      // Every item under the filters, wherever the page starts.
      const { cursor: _page, ...filters } = q
      const scan = scanOf(table, filters)
      return scan ? scans.count(scan) : 0
    },
  }
}

const records = <T>(rows: { record: string }[]) => rows.map((r) => JSON.parse(r.record) as T)

function incidentOf(row: IncidentRow): Incident {
  return {
    ...row,
    rules: JSON.parse(row.rules) as string[],
    falco_rules: JSON.parse(row.falco_rules) as string[],
    actions: JSON.parse(row.actions) as string[],
    revoke: row.revoke ? (JSON.parse(row.revoke) as Incident['revoke']) : null,
  }
}
