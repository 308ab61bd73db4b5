// The records of replay's sorted runs (sorted-runs.ts writes them, merge-sorted-runs.ts merges them): their
// binary form, the total order they sort in, the JSON line each stands for, and the file output runs are
// written through.
import { closeSync, openSync, writeSync } from 'node:fs'

/** What a record sorts by: event time (epoch ms), its nanoseconds, and the event id. */
export type SortKey = { time: number; time_ns: number; id: string }

/** A sorted run on disk: its path, how many records it holds, and the keys of its first and last one. */
export type RunInfo = { path: string; count: number; first: SortKey; last: SortKey }

/** A record's kind: a time-only stand-in (text: the ignored reason) or an event (text: its JSON). */
export const standInKind = 0
export const eventKind = 1
/** Set in the kind byte when the id is stored as latin1 rather than UTF-16. */
export const latin1Id = 2

/**
 * A record: u32 length of the rest, f64 time, f64 nanoseconds, u8 kind, u32 id bytes, the id (latin1
 * when every character fits, else UTF-16: a JSON string may hold lone surrogates, which UTF-8 would
 * lose), the text (UTF-8: the JSON of JSON.stringify is well-formed).
 */
export const headerBytes = 25

/** A record with its key: what the sort and the merge compare. */
export type Keyed = SortKey & {
  kind: number
  /** The record's text (its bytes decoded). */
  text(): string
}

/** An in-memory entry of a run writer: its key and where its record sits. */
export class Entry implements Keyed {
  private lineCache: string | undefined
  constructor(
    readonly time: number,
    readonly time_ns: number,
    readonly id: string,
    readonly kind: number,
    readonly chunk: Buffer,
    readonly start: number,
    readonly textStart: number,
    readonly end: number,
  ) {}
  text(): string {
    return this.chunk.toString('utf8', this.textStart, this.end)
  }
  line(): string {
    this.lineCache ??= lineOf(this)
    return this.lineCache
  }
}

/** The JSON line a record stands for: the event's, or the stand-in's ({id, time, time_ns, ignored}). */
export function lineOf(record: Keyed): string {
  const text = record.text()
  if (record.kind === eventKind) return text
  return JSON.stringify({ id: record.id, time: record.time, time_ns: record.time_ns, ignored: text })
}

/** Non-finite times (null in a JSON line) sort first, so that the order stays total. */
const sortTime = (time: number) => (Number.isFinite(time) ? time : -Number.MAX_VALUE)

export function compareKeys(a: SortKey, b: SortKey): number {
  return (
    sortTime(a.time) - sortTime(b.time) || a.time_ns - b.time_ns || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  )
}

export type WithLine = Keyed & { line(): string }

export function compareRecords(a: WithLine, b: WithLine): number {
  const byKey = compareKeys(a, b)
  if (byKey !== 0) return byKey
  const x = a.line()
  const y = b.line()
  return x < y ? -1 : x > y ? 1 : 0
}

/** A sorted run still in memory. */
export type MemoryRun = { entries: Entry[] }

/** Bytes of a chunk records are written into, and of a run file's write buffer. */
export const chunkBytes = 1 << 20

export const keyOf = (record: SortKey | undefined): SortKey => {
  const r = record as SortKey
  return { time: r.time, time_ns: r.time_ns, id: r.id }
}

/** Writes records to a new run file (mode 0600) through a 1 MiB buffer. */
export function createRecordOutput(path: string) {
  const fd = openSync(path, 'w', 0o600)
  const buffer = Buffer.allocUnsafe(chunkBytes)
  let used = 0
  const drain = () => {
    let at = 0
    while (at < used) at += writeSync(fd, buffer, at, used - at)
    used = 0
  }
  return {
    write(bytes: Buffer, start: number, end: number) {
      if (used + end - start > buffer.length) drain()
      if (end - start > buffer.length) {
        let at = start
        while (at < end) at += writeSync(fd, bytes, at, end - at)
        return
      }
      used += bytes.copy(buffer, used, start, end)
    },
    close() {
      try {
        drain()
      } finally {
        closeSync(fd)
      }
    },
  }
}
