// The read API's filters over the embedded store's tables (correlation-store.ts): for each list, the part
// its index serves and the conditions checked on each row (stepped-scan.ts reads them in bounded steps),
// built from a parsed ListQuery. Values only ever travel as parameters. Pure.

import type { ListQuery } from '../runtime/list-query.ts'
import type { RevokeOutcome } from '../schemas/types.ts'
import type { Scan } from './stepped-scan.ts'

export type StoreList = 'correlations' | 'incidents' | 'revoke_outcomes'

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

export type RevokeStatus = RevokeOutcome['status']
/** Every revoke outcome's status. */
export const revokeStatuses = [
  'pending',
  'sent',
  'failed',
  'dry_run',
  'suppressed',
] as const satisfies readonly RevokeStatus[]
/** The revoke status of an incident (and its correlations): its most telling outcome's, or `none` yet. */
export const incidentStatuses = [...revokeStatuses, 'none'] as const

/**
 * An incident's most telling revoke outcome as `select` reads it (over `o`: id, decision_id, status, time,
 * reason): a delivery or decision to send before a suppression, then the newest. Each status's newest is
 * one seek of (incident_id, status, time, id), and the five are ranked: ordering all of the incident's
 * outcomes read and sorted every held-back one, whose number the watched agent decides, for each incident
 * row of a page. The status filter checks rows with incidentStatusIsSql instead.
 */
export const tellingOutcomeSql = (incidentId: string, select: string) => {
  const newest = revokeStatuses.map(
    (status) => `SELECT * FROM (SELECT r.id, r.decision_id, r.status, r.time,
      json_extract(r.record, '$.reason') AS reason FROM revoke_outcomes r
      WHERE r.incident_id = ${incidentId} AND r.status = '${status}' ORDER BY r.time DESC, r.id DESC LIMIT 1)`,
  )
  return `(SELECT ${select} FROM (${newest.join(' UNION ALL ')}) o
    ORDER BY o.status = 'suppressed', o.time DESC, o.id DESC LIMIT 1)`
}

/** Statuses of a revoke that goes ahead: few per incident (one decision per round), unlike suppressions. */
const goingAhead = revokeStatuses.filter((s) => s !== 'suppressed')

/** Whether the incident has an outcome of `status` newer than (time, id) when given. Each is one seek. */
const hasOutcome = (incidentId: string, status: string, newerThan?: [string, string]) =>
  `EXISTS (SELECT 1 FROM revoke_outcomes r WHERE r.incident_id = ${incidentId} AND r.status = '${status}'${
    newerThan ? ` AND r.time >= ${newerThan[0]} AND (r.time > ${newerThan[0]} OR r.id > ${newerThan[1]})` : ''
  })`

/**
 * Whether the revoke status an incident shows (tellingOutcomeSql) is `status` (`none`: no outcome yet;
 * any other text: false), checked without ranking its outcomes: a few seeks of (incident_id, status, time,
 * id), and one alone for the many rows whose incident has no outcome of that status. The status filter
 * runs it on every row it walks.
 */
export function incidentStatusIsSql(incidentId: string, status: string): string {
  if (status === 'none')
    return `NOT EXISTS (SELECT 1 FROM revoke_outcomes r WHERE r.incident_id = ${incidentId})`
  if (status === 'suppressed')
    return [
      hasOutcome(incidentId, 'suppressed'),
      ...goingAhead.map((s) => `NOT ${hasOutcome(incidentId, s)}`),
    ].join(' AND ')
  if (!(goingAhead as readonly string[]).includes(status)) return '0'
  // Its newest outcome of that status, and no newer one of the others that go ahead.
  const others = goingAhead.filter((s) => s !== status)
  return `${hasOutcome(incidentId, status)} AND EXISTS (SELECT 1 FROM (SELECT r.time, r.id FROM revoke_outcomes r
    WHERE r.incident_id = ${incidentId} AND r.status = '${status}' ORDER BY r.time DESC, r.id DESC LIMIT 1) s
    WHERE ${others.map((o) => `NOT ${hasOutcome(incidentId, o, ['s.time', 's.id'])}`).join(' AND ')})`
}

/** Each list's alias and sort column: pages are ordered by (time, id), newest first. */
export const listShape: Record<StoreList, { alias: string; time: string }> = {
  correlations: { alias: 't', time: 'time' },
  incidents: { alias: 'i', time: 'last_seen' },
  revoke_outcomes: { alias: 't', time: 'time' },
}

/**
 * A list's query as a stepped scan (stepped-scan.ts): the filters an index serves (an agent: in
 * correlations and incidents an index keyed by it leads in (time, id) order; since, until, the cursor) and
 * the ones checked on each row. Text filters: `agent`, `incident`, `status` (`none`: no revoke outcome
 * yet), and `rule`, which names either a correlation rule id or a Falco rule. No index is keyed by a
 * correlation's incident: `incident` is the incident's bounds (incidentCorrelationsSql), looked up by the
 * caller, and undefined when no such incident exists (nothing matches).
 */
export function storeScan(list: StoreList, q: ListQuery, incident?: IncidentBounds): Scan | undefined {
  const { alias: a, time } = listShape[list]
  const scan: Scan = { table: list, alias: a, time, checked: [], params: [] }
  const check = (sql: string, ...values: (string | number)[]) => {
    scan.checked.push(sql)
    scan.params.push(...values)
  }
  if (q.since !== undefined) scan.since = q.since
  if (q.until !== undefined) scan.until = q.until
  if (q.cursor) scan.cursor = q.cursor
  const { agent, status, rule } = q.text
  if (list === 'correlations' && q.text.incident !== undefined) {
    if (!incident) return undefined
    scan.keys = [{ column: 'agent_id', value: incident.agent_id }]
    scan.since = Math.max(scan.since ?? incident.first_seen, incident.first_seen)
    scan.until = Math.min(scan.until ?? incident.last_seen, incident.last_seen)
    if (agent !== undefined) check(`${a}.agent_id = ?`, agent)
    check(`${a}.incident_id = ?`, incident.id)
  } else if (agent !== undefined) {
    // revoke_outcomes has no index keyed by its agent.
    if (list === 'revoke_outcomes') check(`${a}.agent_id = ?`, agent)
    else scan.keys = [{ column: 'agent_id', value: agent }]
  }
  if (list === 'revoke_outcomes' && q.text.incident !== undefined) {
    // An incident's outcomes of one status: (incident_id, status, time, id) serves both, and the watched
    // agent can give its incident any number of held-back ones (suppressed) but few of the others.
    scan.keys = [{ column: 'incident_id', value: q.text.incident }]
    if (status !== undefined) scan.keys.push({ column: 'status', value: status })
  }
  if (list === 'correlations') {
    if (rule !== undefined)
      check(
        `(json_extract(${a}.record, '$.rule.id') = ? OR json_extract(${a}.record, '$.edge.rule') = ?)`,
        rule,
        rule,
      )
    if (q.min_score !== undefined) check(`json_extract(${a}.record, '$.score') >= ?`, q.min_score)
    if (status !== undefined) check(incidentStatusIsSql(`${a}.incident_id`, status))
  }
  if (list === 'incidents') {
    if (rule !== undefined)
      check(
        `(EXISTS (SELECT 1 FROM json_each(${a}.rules) r WHERE r.value = ?) OR
          EXISTS (SELECT 1 FROM json_each(${a}.falco_rules) f WHERE f.value = ?))`,
        rule,
        rule,
      )
    if (q.min_score !== undefined) check(`${a}.max_score >= ?`, q.min_score)
    if (status !== undefined) check(incidentStatusIsSql(`${a}.id`, status))
  }
  if (list === 'revoke_outcomes' && status !== undefined && q.text.incident === undefined)
    check(`${a}.status = ?`, status)
  return scan
}

/**
 * Whether a correlations query filters by its incident alone: its total is then the count the incident's
 * row keeps (counting its correlations reads each of their rows).
 */
export function incidentOnly(list: StoreList, q: ListQuery): boolean {
  const { incident, ...otherText } = q.text
  return (
    list === 'correlations' &&
    incident !== undefined &&
    Object.keys(otherText).length === 0 &&
    q.since === undefined &&
    q.until === undefined &&
    q.min_score === undefined
  )
}
