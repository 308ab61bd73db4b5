// Reads the embedded bus's file from another thread: for a stage on a worker thread (the store writer) that
// reads its records itself rather than receive them through the thread that writes the file.
import Database from 'better-sqlite3'
import {
  type SegmentRow,
  segmentRawSpans,
  segmentRecords,
  segmentsInRangeSql,
  splitSegment,
  withoutRaw,
} from './embedded-segments.ts'
import type { StoredRecord } from './embedded-storage.ts'
import { parseStoredRecord } from './record-json.ts'

export type RecordReader = {
  /**
   * Records [from, to) of a topic's partition that are on disk, in order (none when the topic is unknown).
   * `options.withoutRaw`: each record whose writer said where its `raw` lies (BusRecord.rawSpan) with null
   * there, for a reader that does not read it; the others (and every record of a segment written without
   * the spans) whole. A record read without its `raw` carries its whole text in `whole`.
   */
  read(
    topic: string,
    partition: number,
    from: number,
    to: number,
    options?: { withoutRaw?: boolean },
  ): ReadRecord[]
  close(): void
}

/** A stored record; `whole`: its whole text, when `value` is that text with null as its `raw`. */
export type ReadRecord = StoredRecord & { whole?: string }

/**
 * A read-only connection to a bus file that another thread (or process) writes: for a stage on a worker
 * thread that reads its records itself rather than receive them through the writer's thread. It sees every
 * transaction committed before each read (WAL), so every record the bus has handed out.
 */
export function openRecordReader(file: string): RecordReader {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  const topicId = db.prepare<[string], { id: number }>('SELECT id FROM topics WHERE name = ?')
  const from = db.prepare<[number, number, number, number, number], SegmentRow>(segmentsInRangeSql)
  const ids = new Map<string, number>()
  return {
    read: (topic, partition, fromOffset, to, options) => {
      let id = ids.get(topic)
      if (id === undefined) {
        id = topicId.get(topic)?.id
        if (id === undefined) return []
        ids.set(topic, id)
      }
      const records: ReadRecord[] = []
      for (const segment of from.iterate(id, partition, fromOffset, to - 1 + segmentRecords, to)) {
        const { keys, vals } = splitSegment(segment)
        const spans = options?.withoutRaw ? segmentRawSpans(segment) : undefined
        const first = segment.first_offset
        const last = Math.min(segment.last_offset, to - 1)
        for (let offset = Math.max(fromOffset, first); offset <= last; offset++) {
          const i = offset - first
          const text = vals[i] as string
          const value = spans
            ? withoutRaw(text, spans[1 + 2 * i] as number, spans[2 + 2 * i] as number)
            : text
          records.push(
            value === text
              ? { offset, key: keys[i] as string, value }
              : { offset, key: keys[i] as string, value, whole: text },
          )
        }
      }
      return records
    },
    close: () => db.close(),
  }
}

/**
 * A record read from the bus file: without its `raw` when the reader could (openRecordReader above), and
 * whole should that text not parse. nerve counts the span itself as it writes the record, so it always fits;
 * were it ever not to, the stage reads the record whole rather than fail the range again and again.
 */
export function parseReadRecord(r: ReadRecord): unknown {
  if (r.whole === undefined) return parseStoredRecord(r.value)
  try {
    return parseStoredRecord(r.value)
  } catch {
    return parseStoredRecord(r.whole)
  }
}
