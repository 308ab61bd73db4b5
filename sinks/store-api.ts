// The embedded store's read API: GET /v1/correlations, /v1/incidents, /v1/incidents/:id, /v1/revokes.
// Lists are newest first and paged (runtime/read-route.ts). Every epoch-ms time has an ISO 8601 twin
// (`time` → `time_iso`).
import { NerveError } from '../runtime/errors.ts'
import type { Route, RouteRequest, RouteResponse } from '../runtime/http-routes.ts'
import {
  type Cursor,
  encodeCursor,
  type ListQuery,
  parseIncidentCorrelations,
  parseListQuery,
} from '../runtime/list-query.ts'
import { iso, pageOf, readRoute } from '../runtime/read-route.ts'
import type { Correlation, RevokeOutcome } from '../schemas/types.ts'
import type { Incident } from './correlation-store.ts'
import { incidentStatuses, type RevokeStatus, revokeStatuses, type StoreList } from './store-filters.ts'
import { type IncidentDetail, maxIncidentCorrelations, type StoreReads } from './store-reads.ts'

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

/** The store's read routes. */
export const storeReadUrls = [
  '/v1/correlations',
  '/v1/incidents',
  '/v1/incidents/:id',
  '/v1/revokes',
] as const
export type StoreReadUrl = (typeof storeReadUrls)[number]

/**
 * Per status of which the detail holds fewer outcomes than the incident has, the cursor that pages on from
 * its oldest shown: GET /v1/revokes?incident=…&status=…&cursor=….
 */
function revokesNext({ revokes, revokeCounts }: IncidentDetail): Partial<Record<RevokeStatus, string>> {
  const next: Partial<Record<RevokeStatus, string>> = {}
  for (const status of revokeStatuses) {
    const shown = revokes.filter((o) => o.status === status)
    const last = shown.at(-1)
    if (last && shown.length < revokeCounts[status])
      next[status] = encodeCursor({ time: last.time, id: last.id })
  }
  return next
}

/** What a read needs of its request: its query and path parameters (what crosses to the reader thread). */
export type StoreRead = Pick<RouteRequest, 'query' | 'params'>

/** Routes that answer from `store` on the thread that serves them (tests; `nerve run` reads on its own). */
export function storeRoutes(store: StoreReads): Route[] {
  return storeReadUrls.map((url) => readRoute(url, (req) => answerStoreRead(store, url, req)))
}

/** The answer to a read of one of the store's routes; a bad query or an unknown incident throws. */
export function answerStoreRead(store: StoreReads, url: StoreReadUrl, req: StoreRead): RouteResponse {
  const list = <T, V>(
    name: StoreList,
    params: string[],
    fetch: (q: ListQuery) => T[],
    keyOf: (item: T) => Cursor,
    view: (item: T) => V,
  ): RouteResponse => {
    const q = parseListQuery(req.query, params, {
      minScore: name !== 'revoke_outcomes',
      statuses: name === 'revoke_outcomes' ? revokeStatuses : incidentStatuses,
    })
    const page = pageOf(q, fetch, () => store.total(name, q), keyOf)
    return { status: 200, body: { ...page, items: page.items.map(view) } }
  }
  const filters = ['agent', 'rule', 'status']
  switch (url) {
    case '/v1/correlations':
      return list(
        'correlations',
        [...filters, 'incident'],
        store.correlations,
        (c) => ({ time: c.time, id: c.id }),
        correlationView,
      )
    case '/v1/incidents':
      return list(
        'incidents',
        filters,
        store.incidents,
        (i) => ({ time: i.last_seen, id: i.id }),
        incidentView,
      )
    case '/v1/incidents/:id': {
      const id = req.params?.id ?? ''
      const found = store.incident(id, parseIncidentCorrelations(req.query, maxIncidentCorrelations))
      if (!found) throw new NerveError('NOT_FOUND', `No incident ${id}.`)
      return {
        status: 200,
        body: {
          incident: incidentView(found.incident),
          correlations: found.correlations.map(correlationView),
          revokes: found.revokes.map(revokeView),
          revoke_counts: found.revokeCounts,
          revoke_counts_capped: found.revokeCountsCapped,
          revokes_next: revokesNext(found),
        },
      }
    }
    case '/v1/revokes':
      return list(
        'revoke_outcomes',
        ['agent', 'incident', 'status'],
        store.revokes,
        (o) => ({ time: o.time, id: o.id }),
        revokeView,
      )
  }
}
