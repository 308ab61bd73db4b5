// The read API's filters as SQL over the embedded store's tables (correlation-store.ts): one WHERE clause
// and its parameters per list, built from a parsed ListQuery. Values only ever travel as parameters. Pure.
import type { ListQuery } from './store-query.ts'

export type StoreList = 'correlations' | 'incidents' | 'revoke_outcomes'

export type SqlFilter = { where: string; params: (string | number)[] }

/**
 * An incident's correlations, found without an index of their own. An incident belongs to one agent (its
 * id hashes the agent's, group-incidents.ts), and each of its correlations has a time between the
 * incident's first_seen (the earliest edge or core event time, never after a correlation's time, the later
 * of its two) and last_seen (the latest correlation time), both kept in the same transaction as the
 * correlation. So (agent, time range) bounds the search in correlations_agent, and incident_id picks the
 * rows. An agent's incidents do not overlap in time (a correlation within the gap of two merges them, and
 * start-up refuses a window side longer than the gap, correlator-config.ts), so the range holds little else;
 * past the merge bound (group-incidents.ts maxMerges) an incident may reach over another of its agent's,
 * whose rows the range then holds too, and incident_id still picks the right ones. An index keyed by the incident's hashed id sent
 * every insert to a random page of it: a sixth of the writer's CPU per correlation.
 */
export const incidentCorrelationsSql =
  'agent_id = @agent_id AND time >= @first_seen AND time <= @last_seen AND incident_id = @id'

/** The bounds of an incident's correlations (incidentCorrelationsSql's parameters). */
export type IncidentBounds = { id: string; agent_id: string; first_seen: number; last_seen: number }

/** The revoke status an incident shows: a delivery or decision to send before a suppression. */
export const incidentStatusSql = (incidentId: string) =>
  `(SELECT o.status FROM revoke_outcomes o WHERE o.incident_id = ${incidentId}
    ORDER BY o.status = 'suppressed', o.time DESC, o.id DESC LIMIT 1)`

/** Each list's alias and sort column: pages are ordered by (time, id), newest first. */
export const listShape: Record<StoreList, { alias: string; time: string }> = {
  correlations: { alias: 't', time: 'time' },
  incidents: { alias: 'i', time: 'last_seen' },
  revoke_outcomes: { alias: 't', time: 'time' },
}

/**
 * `withCursor: false` gives the filter without the page position, for the `total` of every page.
 * Text filters: `agent`, `incident`, `status` (`none`: no revoke outcome yet), and `rule`, which names
 * either a correlation rule id or a Falco rule.
 */
export function storeFilter(list: StoreList, q: ListQuery, withCursor = true): SqlFilter {
  const { alias: a, time } = listShape[list]
  const where: string[] = []
  const params: (string | number)[] = []
  const add = (sql: string, ...values: (string | number)[]) => {
    where.push(sql)
    params.push(...values)
  }
  const { agent, incident, status, rule } = q.text
  if (agent !== undefined) add(`${a}.agent_id = ?`, agent)
  if (incident !== undefined && list === 'correlations') {
    // No index is keyed by a correlation's incident: its agent and time range bound it in
    // correlations_agent (incidentCorrelationsSql).
    const bound = (column: string) => `(SELECT ${column} FROM incidents WHERE id = ?)`
    add(
      `${a}.agent_id = ${bound('agent_id')} AND ${a}.time >= ${bound('first_seen')} AND ${a}.time <= ${bound('last_seen')} AND ${a}.incident_id = ?`,
      incident,
      incident,
      incident,
      incident,
    )
  } else if (incident !== undefined) add(`${a}.incident_id = ?`, incident)
  if (q.since !== undefined) add(`${a}.${time} >= ?`, q.since)
  if (q.until !== undefined) add(`${a}.${time} <= ?`, q.until)
  if (withCursor && q.cursor) {
    add(`(${a}.${time} < ? OR (${a}.${time} = ? AND ${a}.id < ?))`, q.cursor.time, q.cursor.time, q.cursor.id)
  }
  if (list === 'correlations') {
    if (rule !== undefined)
      add(
        `(json_extract(${a}.record, '$.rule.id') = ? OR json_extract(${a}.record, '$.edge.rule') = ?)`,
        rule,
        rule,
      )
    if (q.min_score !== undefined) add(`json_extract(${a}.record, '$.score') >= ?`, q.min_score)
    if (status !== undefined) add(`coalesce(${incidentStatusSql(`${a}.incident_id`)}, 'none') = ?`, status)
  }
  if (list === 'incidents') {
    if (rule !== undefined)
      add(
        `(EXISTS (SELECT 1 FROM json_each(${a}.rules) r WHERE r.value = ?) OR
          EXISTS (SELECT 1 FROM json_each(${a}.falco_rules) f WHERE f.value = ?))`,
        rule,
        rule,
      )
    if (q.min_score !== undefined) add(`${a}.max_score >= ?`, q.min_score)
    if (status !== undefined) add(`coalesce(${incidentStatusSql(`${a}.id`)}, 'none') = ?`, status)
  }
  if (list === 'revoke_outcomes' && status !== undefined) add(`${a}.status = ?`, status)
  return { where: where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '', params }
}

/**
 * One page of a list, newest first: `select` is what an incident row is read with (correlation-store.ts);
 * the other lists read their records. The LIMIT is the last parameter.
 */
export function listSql(list: StoreList, q: ListQuery, incidentColumns: string): SqlFilter & { sql: string } {
  const { alias: a, time } = listShape[list]
  const { where, params } = storeFilter(list, q)
  const select = list === 'incidents' ? `SELECT ${incidentColumns}` : `SELECT ${a}.record`
  return {
    sql: `${select} FROM ${list} ${a}${where} ORDER BY ${a}.${time} DESC, ${a}.id DESC LIMIT ?`,
    where,
    params: [...params, q.limit],
  }
}

/** How many items a list holds under the query's filters, whatever the page. */
export function totalSql(list: StoreList, q: ListQuery): SqlFilter & { sql: string } {
  const { incident, ...otherText } = q.text
  const incidentOnly =
    list === 'correlations' &&
    incident !== undefined &&
    Object.keys(otherText).length === 0 &&
    q.since === undefined &&
    q.until === undefined &&
    q.min_score === undefined
  // An incident's correlations, unfiltered: the count its row keeps (correlations_agent does not hold the
  // incident id, so counting them reads each of their rows).
  if (incidentOnly) {
    const sql = 'SELECT coalesce((SELECT i.correlations FROM incidents i WHERE i.id = ?), 0) AS n'
    return { sql, where: '', params: [incident] }
  }
  const { where, params } = storeFilter(list, q, false)
  return { sql: `SELECT count(*) AS n FROM ${list} ${listShape[list].alias}${where}`, where, params }
}
