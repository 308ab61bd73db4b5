// What every list and read of the read API shares, whichever stage serves it (the store's lists, dead
// letters and late events, ingest's agents): the headers of an answer, the read route's auth, and one page
// of a list, `{items, count, total, next}`, where `count` is the page's size, `total` every item under
// the filters, and `next` (when more remain) the value to pass as `cursor=`.
import type { Route, RouteRequest, RouteResponse } from './http-routes.ts'
import { type Cursor, encodeCursor, type ListQuery } from './list-query.ts'

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

/** The ISO 8601 twin of an epoch-ms time (`time` → `time_iso`). */
export const iso = (ms: number): string => new Date(ms).toISOString()

/**
 * What every answer of a read route says, refusals included (the server adds them to each, by the route's
 * `auth: 'read'`): it is the reader's alone and is never stored (a browser's disk cache, a proxy), and its
 * JSON is never sniffed as a page, since it holds text the watched agent wrote, or echoes the reader's query.
 */
export const readAnswerHeaders: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
}

/**
 * A read route: its answers show ARNs, access key ids and command lines, so `auth: 'read'`, and the server
 * gives every answer of it the read headers.
 */
export function readRoute(
  url: string,
  handle: (req: RouteRequest) => RouteResponse | Promise<RouteResponse>,
): Route {
  return { method: 'GET', url, auth: 'read', handle: async (req) => handle(req) }
}
