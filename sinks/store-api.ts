// The embedded store's read API: GET /v1/correlations, /v1/incidents, /v1/incidents/:id, /v1/revokes.
// Lists are newest first and paged: `{items, count, total, next}`, where `count` is the page's size,
// `total` every item under the filters, and `next` (when more remain) the value to pass as `cursor=`.
// Every epoch-ms time has an ISO 8601 twin (`time` → `time_iso`).
import { NerveError } from '../runtime/errors.ts'
import type { Route, RouteRequest, RouteResponse } from '../runtime/http-server.ts'
import type { Correlation, RevokeOutcome } from '../schemas/types.ts'
import { type CorrelationStore, type Incident, maxIncidentCorrelations } from './correlation-store.ts'
import type { StoreList } from './store-filters.ts'
import {
  type Cursor,
  encodeCursor,
  type ListQuery,
  parseIncidentCorrelations,
  parseListQuery,
} from './store-query.ts'

export type Page<T> = { items: T[]; count: number; total: number; next?: string }

/**
 * One page: asks for one item more than the limit to know whether a next page exists. A first page with
 * no next one holds every item under the filters, so its size is the total: a filter no index serves
 * reads the whole table, and is not made to read it twice.
 */
export function pageOf<T>(
  q: ListQuery,
  fetch: (q: ListQuery) => T[],
  total: () => number,
  keyOf: (item: T) => Cursor,
): Page<T> {
  const rows = fetch({ ...q, limit: q.limit + 1 })
  const items = rows.slice(0, q.limit)
  const last = items.at(-1)
  const more = rows.length > q.limit
  const all = !more && q.cursor === undefined
  const page: Page<T> = { items, count: items.length, total: all ? items.length : total() }
  if (more && last !== undefined) page.next = encodeCursor(keyOf(last))
  return page
}

export const iso = (ms: number): string => new Date(ms).toISOString()

export const correlationView = (c: Correlation) => ({
  ...c,
  time_iso: iso(c.time),
  edge: { ...c.edge, time_iso: iso(c.edge.time) },
  core: { ...c.core, time_iso: iso(c.core.time) },
})

export const incidentView = (i: Incident) => ({
  ...i,
  first_seen_iso: iso(i.first_seen),
  last_seen_iso: iso(i.last_seen),
  revoke: i.revoke ? { ...i.revoke, time_iso: iso(i.revoke.time) } : null,
})

export const revokeView = (o: RevokeOutcome) => ({ ...o, time_iso: iso(o.time) })

type Store = Omit<CorrelationStore, 'routes'>

/**
 * What every read answer says: it is the reader's alone and is never stored (a browser's disk cache, a
 * proxy), and its JSON is never sniffed as a page, since it holds text the watched agent wrote.
 */
export const readAnswerHeaders: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
}

/** A read route: correlations show ARNs, access key ids and command lines, so `auth: 'read'`. */
export function readRoute(url: string, handle: (req: RouteRequest) => RouteResponse): Route {
  return {
    method: 'GET',
    url,
    auth: 'read',
    handle: async (req) => {
      const res = handle(req)
      return { ...res, headers: { ...readAnswerHeaders, ...res.headers } }
    },
  }
}

export function storeRoutes(store: Store): Route[] {
  const list = <T, V>(
    name: StoreList,
    req: RouteRequest,
    params: string[],
    fetch: (q: ListQuery) => T[],
    keyOf: (item: T) => Cursor,
    view: (item: T) => V,
  ): RouteResponse => {
    const q = parseListQuery(req.query, params, { minScore: name !== 'revoke_outcomes' })
    const page = pageOf(q, fetch, () => store.total(name, q), keyOf)
    return { status: 200, body: { ...page, items: page.items.map(view) } }
  }
  const filters = ['agent', 'rule', 'status']
  return [
    readRoute('/v1/correlations', (req) =>
      list(
        'correlations',
        req,
        [...filters, 'incident'],
        store.correlations,
        (c) => ({ time: c.time, id: c.id }),
        correlationView,
      ),
    ),
    readRoute('/v1/incidents', (req) =>
      list(
        'incidents',
        req,
        filters,
        store.incidents,
        (i) => ({ time: i.last_seen, id: i.id }),
        incidentView,
      ),
    ),
    readRoute('/v1/incidents/:id', (req) => {
      const id = req.params?.id ?? ''
      const found = store.incident(id, parseIncidentCorrelations(req.query, maxIncidentCorrelations))
      if (!found) throw new NerveError('NOT_FOUND', `No incident ${id}.`)
      return {
        status: 200,
        body: {
          incident: incidentView(found.incident),
          correlations: found.correlations.map(correlationView),
          revokes: found.revokes.map(revokeView),
        },
      }
    }),
    readRoute('/v1/revokes', (req) =>
      list(
        'revoke_outcomes',
        req,
        ['agent', 'incident', 'status'],
        store.revokes,
        (o) => ({ time: o.time, id: o.id }),
        revokeView,
      ),
    ),
  ]
}
