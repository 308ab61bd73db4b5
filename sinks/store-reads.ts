// The embedded store's reads (correlation-store.ts's tables): the lists of the read API, one page and its
// total at a time, and an incident's detail. They take a connection, so that the same reads run on the
// store's own (tests, tools) or on the reader thread's read-only one (store-reader.worker.mjs), which is
// the one `nerve run` serves the API from.
import type Database from 'better-sqlite3'
import type { Correlation, RevokeOutcome } from '../schemas/types.ts'
import type { Incident } from './correlation-store.ts'
import {
  type IncidentBounds,
  incidentCorrelationsSql,
  listSql,
  type StoreList,
  totalSql,
} from './store-filters.ts'
import type { ListQuery } from './store-query.ts'

export type IncidentRow = Omit<Incident, 'rules' | 'falco_rules' | 'actions' | 'revoke'> & {
  rules: string
  falco_rules: string
  actions: string
  revoke: string | null
}

/** An incident's columns with its most telling revoke outcome (the order the `status` filter uses). */
export const incidentColumns = `i.*, (SELECT json_object('decision_id', o.decision_id, 'status', o.status,
  'reason', json_extract(o.record, '$.reason'), 'time', o.time) FROM revoke_outcomes o
  WHERE o.incident_id = i.id ORDER BY o.status = 'suppressed', o.time DESC, o.id DESC LIMIT 1) AS revoke`

/**
 * Correlations an incident's detail carries, newest first: a flooding agent's incident gathers tens of
 * thousands, and the console reloads the detail every 5 s. The rest: GET /v1/correlations?incident=….
 */
export const maxIncidentCorrelations = 1000

export type StoreReads = {
  correlations(query: ListQuery): Correlation[]
  incidents(query: ListQuery): Incident[]
  /** An incident with its newest `limit` correlations (at most, and by default, maxIncidentCorrelations). */
  incident(
    id: string,
    limit?: number,
  ): { incident: Incident; correlations: Correlation[]; revokes: RevokeOutcome[] } | undefined
  revokes(query: ListQuery): RevokeOutcome[]
  /** How many items the list holds under the query's filters, whatever the page. */
  total(list: StoreList, query: ListQuery): number
}

export function createStoreReads(db: Database.Database): StoreReads {
  const sql = {
    incident: db.prepare<[string], IncidentRow>(`SELECT ${incidentColumns} FROM incidents i WHERE i.id = ?`),
    incidentCorrelations: db.prepare<[IncidentBounds & { limit: number }], { record: string }>(
      `SELECT record FROM correlations WHERE ${incidentCorrelationsSql} ORDER BY time DESC, id DESC
       LIMIT @limit`,
    ),
    incidentRevokes: db.prepare<[string], { record: string }>(
      'SELECT record FROM revoke_outcomes WHERE incident_id = ? ORDER BY time DESC, id DESC',
    ),
  }
  /** Newest first, one page of the query's filters (store-filters.ts). */
  const list = <Row>(table: StoreList, q: ListQuery) => {
    const { sql: text, params } = listSql(table, q, incidentColumns)
    return db.prepare(text).all(...params) as Row[]
  }
  return {
    correlations: (q) => records<Correlation>(list('correlations', q)),
    incidents: (q) => list<IncidentRow>('incidents', q).map(incidentOf),
    incident(id, limit = maxIncidentCorrelations) {
      const row = sql.incident.get(id)
      if (!row) return undefined
      return {
        incident: incidentOf(row),
        correlations: records<Correlation>(
          sql.incidentCorrelations.all({ ...row, limit: Math.min(limit, maxIncidentCorrelations) }),
        ),
        revokes: records<RevokeOutcome>(sql.incidentRevokes.all(id)),
      }
    },
    revokes: (q) => records<RevokeOutcome>(list('revoke_outcomes', q)),
    total(table, q) {
      const { sql: text, params } = totalSql(table, q)
      return (db.prepare(text).get(...params) as { n: number }).n
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
