// GET /v1/agents: the agents this ingest process has resolved since it started (resolve-agent-identity.ts
// keeps every registry agent and the 10,000 unregistered ones that arrived last), as a list of the read API: newest first by last seen, paged
// `{items, count, total, next}`, filtered by `agent` and by `since`/`until` on last seen, a bad query a 400
// naming the parameter, and the read headers and token, since it shows ARNs, access key ids and pods.
import type { Route } from '../runtime/http-routes.ts'
import { type ListQuery, parseListQuery } from '../runtime/list-query.ts'
import { iso, pageOf, readRoute } from '../runtime/read-route.ts'
import type { AgentSummary } from './resolve-agent-identity.ts'

/** Newest first: by last seen, then by id, both descending (the store's lists' (time, id) order). */
const newerFirst = (a: AgentSummary, b: AgentSummary) =>
  b.last_seen - a.last_seen || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)

/** Whether `a` passes the query's filters; the cursor keeps the ones after the page before's last. */
function matches(a: AgentSummary, q: ListQuery): boolean {
  if (q.text.agent !== undefined && a.id !== q.text.agent) return false
  if (q.since !== undefined && a.last_seen < q.since) return false
  if (q.until !== undefined && a.last_seen > q.until) return false
  const c = q.cursor
  return c === undefined || a.last_seen < c.time || (a.last_seen === c.time && a.id < c.id)
}

export function createAgentsRoute(agents: () => AgentSummary[]): Route {
  return readRoute('/v1/agents', (req) => {
    const q = parseListQuery(req.query, ['agent'])
    const listed = agents().sort(newerFirst)
    const page = pageOf(
      q,
      (p) => listed.filter((a) => matches(a, p)).slice(0, p.limit),
      () => listed.filter((a) => matches(a, { ...q, cursor: undefined })).length,
      (a) => ({ time: a.last_seen, id: a.id }),
    )
    const items = page.items.map((a) => ({
      ...a,
      first_seen_iso: iso(a.first_seen),
      last_seen_iso: iso(a.last_seen),
    }))
    return { status: 200, body: { ...page, items } }
  })
}
