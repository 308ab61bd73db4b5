// The rejected store's reads (rejected-store.ts's tables): GET /v1/dead-letters and /v1/late-events, one
// page and its total at a time. They take a connection, so that the same reads run on the store's own
// (`nerve dead-letters`, tests) or on the reader thread's read-only one (store-reader.worker.mjs), which is
// the one `nerve run` serves the API from: both tables are the watched agent's to fill (100,000 rows each,
// an original up to 16 KiB), and a page of them parsed and serialized here held the main thread.
import type Database from 'better-sqlite3'
import type { RouteResponse } from '../runtime/http-routes.ts'
import { type ListQuery, parseListQuery } from '../runtime/list-query.ts'
import { iso, type Page, pageOf } from '../runtime/read-route.ts'
import type { StoredDeadLetter, StoredLateEvent } from './rejected-store.ts'
import { createSteppedScans, type Scan, type SteppedScanOptions } from './stepped-scan.ts'
import type { StoreRead } from './store-api.ts'

export type RejectedTable = 'dead_letters' | 'late_events'

/** Text filters per table: API parameter → column. */
const textColumns: Record<RejectedTable, Record<string, string>> = {
  dead_letters: { component: 'component', error_code: 'error_code' },
  late_events: { agent: 'agent_id' },
}

export type RejectedReads = {
  deadLetters(q: ListQuery): Page<StoredDeadLetter>
  lateEvents(q: ListQuery): Page<StoredLateEvent>
}

export function createRejectedReads(db: Database.Database, opts: SteppedScanOptions = {}): RejectedReads {
  const scans = createSteppedScans(db, opts)
  /** Newest first by (time, id) in `<table>_time`; the text filters have no index and are checked per row. */
  const list = <T>(table: RejectedTable, q: ListQuery): Page<T> => {
    const scan: Scan = { table, alias: 'r', time: 'time', checked: [], params: [] }
    for (const [param, column] of Object.entries(textColumns[table])) {
      const value = q.text[param]
      if (value === undefined) continue
      scan.checked.push(`r.${column} = ?`)
      scan.params.push(value)
    }
    if (q.since !== undefined) scan.since = q.since
    if (q.until !== undefined) scan.until = q.until
    return pageOf(
      q,
      (page) =>
        scans
          .rows<{ record: string }>(
            page.cursor ? { ...scan, cursor: page.cursor } : scan,
            'r.record',
            page.limit,
          )
          .map((r) => JSON.parse(r.record) as T),
      () => scans.count(scan),
      (item) => {
        const row = item as { id: string; received_at?: number; event?: { time: number } }
        return { time: row.event ? row.event.time : (row.received_at as number), id: row.id }
      },
    )
  }
  return {
    deadLetters: (q) => list<StoredDeadLetter>('dead_letters', q),
    lateEvents: (q) => list<StoredLateEvent>('late_events', q),
  }
}

export const rejectedReadUrls = ['/v1/dead-letters', '/v1/late-events'] as const
export type RejectedReadUrl = (typeof rejectedReadUrls)[number]

/** The answer to a read of one of the rejected store's routes; a bad query throws (400). */
export function answerRejectedRead(
  reads: RejectedReads,
  url: RejectedReadUrl,
  req: StoreRead,
): RouteResponse {
  if (url === '/v1/dead-letters') {
    const page = reads.deadLetters(parseListQuery(req.query, Object.keys(textColumns.dead_letters)))
    const items = page.items.map((d) => ({ ...d, received_at_iso: iso(d.received_at) }))
    return { status: 200, body: { ...page, items } }
  }
  const page = reads.lateEvents(parseListQuery(req.query, Object.keys(textColumns.late_events)))
  const items = page.items.map((l) => ({
    ...l,
    stream_time_iso: iso(l.stream_time),
    event: { ...l.event, time_iso: iso(l.event.time) },
  }))
  return { status: 200, body: { ...page, items } }
}
