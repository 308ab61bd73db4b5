// What the pipeline set aside, kept for operators: dead letters (rejected input, undeliverable sink items)
// and late events (missed their window), stored from their topics in `rejected.sqlite` under the data dir
// and served paged by GET /v1/dead-letters and GET /v1/late-events (and `nerve dead-letters`).
// Both come from the watched agent's own input, so both are bounded: an original is kept up to 16 KiB
// (`original_truncated` says when it was cut), a late event without its raw item and with its text cut
// when it is over that (`event_truncated`), and each table keeps
// its newest 100,000 rows; whatever is dropped is counted.
// A consumer batch (up to 500 records) is kept in transactions of `rowsPerWrite` rows with a turn of the
// event loop between them (keepDeadLetters, keepLateEvents): written whole, one batch of late events held
// the loop for 30–45 ms (each row is cut, hashed and serialized on this thread), which every request waited
// behind. Rows are keyed by a hash of their content (INSERT OR IGNORE), so a batch redelivered after a crash
// between two parts writes only what is missing; the bus commits the batch only once every part is synced.
// A dead letter's content is everything but its received_at: a sender's retry of a request is stored once.
import { hash } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { DeadLetter, LateEvent } from '../bus/topics.ts'
import { errorCodeOf } from '../runtime/errors.ts'
import type { Route } from '../runtime/http-routes.ts'
import type { ListQuery } from '../runtime/list-query.ts'
import type { Metrics } from '../runtime/metrics.ts'
import { nextTurn } from '../runtime/next-turn.ts'
import { type Page, readRoute } from '../runtime/read-route.ts'
import { openSqliteFile } from '../runtime/sqlite-file.ts'
import {
  answerRejectedRead,
  createRejectedReads,
  type RejectedTable,
  rejectedReadUrls,
} from './rejected-reads.ts'

export const maxOriginalChars = 16 * 1024
export const maxRowsPerTable = 100_000
/** Rows per transaction of keepDeadLetters/keepLateEvents: a few milliseconds of the loop each. */
export const rowsPerWrite = 50

export type StoredDeadLetter = DeadLetter & { id: string; original_truncated?: true }
export type StoredLateEvent = Omit<LateEvent, 'event'> & {
  id: string
  event: Omit<LateEvent['event'], 'raw'>
  event_truncated?: true
}

export type RejectedStore = {
  writeDeadLetters(batch: readonly DeadLetter[]): number
  writeLateEvents(batch: readonly LateEvent[]): number
  /**
   * Writes a consumer batch in transactions of rowsPerWrite rows, a turn of the event loop between two,
   * and resolves once all of it is on disk (sync) with the number of rows stored.
   */
  keepDeadLetters(batch: readonly DeadLetter[]): Promise<number>
  keepLateEvents(batch: readonly LateEvent[]): Promise<number>
  deadLetters(q: ListQuery): Page<StoredDeadLetter>
  lateEvents(q: ListQuery): Page<StoredLateEvent>
  routes: Route[]
  sync(): Promise<void>
  close(): Promise<void>
}

const schema = `
CREATE TABLE IF NOT EXISTS dead_letters (id TEXT PRIMARY KEY, time INTEGER NOT NULL, component TEXT NOT NULL,
  error_code TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS dead_letters_time ON dead_letters (time DESC, id DESC);
CREATE TABLE IF NOT EXISTS late_events (id TEXT PRIMARY KEY, time INTEGER NOT NULL, agent_id TEXT NOT NULL,
  record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS late_events_time ON late_events (time DESC, id DESC);
`

type Table = RejectedTable

/** In a late event over maxOriginalChars: the longest string kept, and the most items of an array. */
const maxCutChars = 512
const maxCutItems = 16

/**
 * A late event as stored: without its raw item, and when still over maxOriginalChars (Falco output and
 * output_fields are the agent's to fill), every string cut to 512 characters, every array to 16 items and
 * output_fields left out, so a row stays a few tens of KiB whatever the agent sent.
 */
function storedEvent(event: LateEvent['event']): { event: StoredLateEvent['event']; truncated: boolean } {
  const { raw: _raw, ...rest } = event
  if (JSON.stringify(rest).length <= maxOriginalChars) return { event: rest, truncated: false }
  const cut = JSON.parse(
    JSON.stringify(rest, (_key, value: unknown) => {
      if (typeof value === 'string' && value.length > maxCutChars) return value.slice(0, maxCutChars)
      if (Array.isArray(value) && value.length > maxCutItems) return value.slice(0, maxCutItems)
      return value
    }),
  ) as StoredLateEvent['event']
  if (cut.edge) cut.edge.output_fields = {}
  return { event: cut, truncated: true }
}

const hashOf = (text: string) => hash('sha256', text, 'hex').slice(0, 32)

export function createRejectedStore(
  config: { data_dir: string; max_rows?: number },
  deps: { metrics: Metrics },
): RejectedStore {
  const maxRows = config.max_rows ?? maxRowsPerTable
  const telemetry = deps.metrics.component('rejected_store')
  mkdirSync(config.data_dir, { recursive: true })
  const sqlite = openSqliteFile(join(config.data_dir, 'rejected.sqlite'))
  const db = sqlite.db
  db.exec(schema)
  const insert = {
    dead_letters: db.prepare(
      'INSERT OR IGNORE INTO dead_letters (id, time, component, error_code, record) VALUES (?, ?, ?, ?, ?)',
    ),
    late_events: db.prepare(
      'INSERT OR IGNORE INTO late_events (id, time, agent_id, record) VALUES (?, ?, ?, ?)',
    ),
  }
  /** A dead letter stored before, received again (a retried request): it moves to the later time. */
  const repeatDeadLetter = db.prepare<[{ time: number; record: string; id: string }]>(
    'UPDATE dead_letters SET time = @time, record = @record WHERE id = @id AND time < @time',
  )
  const rows: Record<Table, number> = {
    dead_letters: (db.prepare('SELECT count(*) AS n FROM dead_letters').get() as { n: number }).n,
    late_events: (db.prepare('SELECT count(*) AS n FROM late_events').get() as { n: number }).n,
  }
  /** Keeps the newest rows: once over the cap, deletes the oldest beyond it and counts them. */
  const trim = (table: Table, stored: number) => {
    rows[table] += stored
    if (rows[table] <= maxRows) return
    const deleted = db
      .prepare(`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} ORDER BY time ASC, id ASC LIMIT ?)`)
      .run(rows[table] - maxRows).changes
    rows[table] -= deleted
    if (deleted > 0) telemetry.discarded(deleted, 'over_capacity')
  }
  const writeDeadLetters = db.transaction((batch: readonly DeadLetter[]) => {
    let stored = 0
    for (const letter of batch) {
      const cut = letter.original.length > maxOriginalChars
      const kept: StoredDeadLetter = {
        ...letter,
        id: '',
        original: cut ? letter.original.slice(0, maxOriginalChars) : letter.original,
        ...(cut ? { original_truncated: true as const } : {}),
      }
      // Named by what it is, not when it came: a retried request (same items, same indexes) is received
      // again later, and was stored twice when the id hashed received_at. A repeat moves the row to the
      // latest time instead, so a sender that keeps sending the same bad item still shows among the newest.
      kept.id = hashOf(JSON.stringify({ ...letter, received_at: undefined }))
      const record = JSON.stringify(kept)
      const inserted = insert.dead_letters.run(
        kept.id,
        letter.received_at,
        letter.component,
        letter.error_code,
        record,
      ).changes
      if (inserted === 0) repeatDeadLetter.run({ time: letter.received_at, record, id: kept.id })
      stored += inserted
    }
    trim('dead_letters', stored)
    return stored
  })
  const writeLateEvents = db.transaction((batch: readonly LateEvent[]) => {
    let stored = 0
    for (const late of batch) {
      const { event, truncated } = storedEvent(late.event)
      const id = hashOf(`${event.id}\u0000${late.stream_time}`)
      const kept: StoredLateEvent = {
        ...late,
        id,
        event,
        ...(truncated ? { event_truncated: true as const } : {}),
      }
      stored += insert.late_events.run(id, event.time, event.agent.id, JSON.stringify(kept)).changes
    }
    trim('late_events', stored)
    return stored
  })
  const written = (batch: readonly unknown[], work: () => number) => {
    telemetry.received(batch.length)
    try {
      const stored = work()
      telemetry.sent(stored)
      if (stored < batch.length) telemetry.discarded(batch.length - stored, 'duplicate')
      return stored
    } catch (err) {
      telemetry.error(errorCodeOf(err), 'write')
      throw err
    }
  }
  const keepInParts = async <T>(batch: readonly T[], write: (part: readonly T[]) => number) => {
    let stored = 0
    for (let start = 0; start < batch.length; start += rowsPerWrite) {
      if (start > 0) await nextTurn()
      stored += write(batch.slice(start, start + rowsPerWrite))
    }
    await sqlite.sync()
    return stored
  }
  const reads = createRejectedReads(db)
  const store: Omit<RejectedStore, 'routes'> = {
    writeDeadLetters: (batch) => written(batch, () => writeDeadLetters(batch)),
    writeLateEvents: (batch) => written(batch, () => writeLateEvents(batch)),
    keepDeadLetters: (batch) => keepInParts(batch, store.writeDeadLetters),
    keepLateEvents: (batch) => keepInParts(batch, store.writeLateEvents),
    deadLetters: reads.deadLetters,
    lateEvents: reads.lateEvents,
    sync: sqlite.sync,
    close: sqlite.close,
  }
  const routes = rejectedReadUrls.map((url) => readRoute(url, (req) => answerRejectedRead(reads, url, req)))
  return { ...store, routes }
}
