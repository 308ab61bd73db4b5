// Merging replay's sorted runs (sorted-runs.ts) into one ordered stream: a cursor per run, in memory or on
// disk, opened only when the merge reaches its first key, and merge passes when more than fanIn overlap.
import { closeSync, openSync, readSync, rmSync } from 'node:fs'
import {
  compareKeys,
  compareRecords,
  createRecordOutput,
  type Entry,
  headerBytes,
  type Keyed,
  keyOf,
  latin1Id,
  lineOf,
  type MemoryRun,
  type RunInfo,
  type SortKey,
  type WithLine,
} from './sorted-run-records.ts'

/** A run being merged: its current record (key, kind, text) and the next one on demand. */
interface Cursor extends WithLine {
  /** Moves to the next record; false (and closed) at the end. */
  next(): boolean
  /** The current record's bytes, to copy into a merged run. */
  copyTo(out: ReturnType<typeof createRecordOutput>): void
  close(): void
}

class MemoryCursor implements Cursor {
  private at = -1
  private entry: Entry | undefined
  constructor(private entries: Entry[]) {}
  get time() {
    return (this.entry as Entry).time
  }
  get time_ns() {
    return (this.entry as Entry).time_ns
  }
  get id() {
    return (this.entry as Entry).id
  }
  get kind() {
    return (this.entry as Entry).kind
  }
  text() {
    return (this.entry as Entry).text()
  }
  line() {
    return (this.entry as Entry).line()
  }
  next(): boolean {
    if (this.entry) this.entries[this.at] = undefined as unknown as Entry
    this.entry = this.entries[++this.at]
    if (this.entry) return true
    this.close()
    return false
  }
  copyTo(out: ReturnType<typeof createRecordOutput>): void {
    const e = this.entry as Entry
    out.write(e.chunk, e.start, e.end)
  }
  close(): void {
    this.entries = []
  }
}

/** Reads a run file record by record through a buffer of its own (grown for a record larger than it). */
class FileCursor implements Cursor {
  time = 0
  time_ns = 0
  id = ''
  kind = 0
  private fd: number | undefined
  private buffer: Buffer
  /** Bytes of the buffer read from the run. */
  filled = 0
  private start = 0
  private textStart = 0
  private end = 0
  private lineCache: string | undefined
  private textCache: string | undefined

  constructor(path: string, readBytes: number) {
    this.fd = openSync(path, 'r')
    this.buffer = Buffer.allocUnsafe(readBytes)
  }

  text(): string {
    this.textCache ??= this.buffer.toString('utf8', this.textStart, this.end)
    return this.textCache
  }

  line(): string {
    this.lineCache ??= lineOf(this)
    return this.lineCache
  }

  next(): boolean {
    let at = this.readable(this.end, 4)
    if (at === -1) {
      if (this.filled > 0) throw new Error('a sorted run ends inside a record')
      return false
    }
    const length = this.buffer.readUInt32LE(at)
    at = this.readable(at, 4 + length)
    if (at === -1) throw new Error('a sorted run ends inside a record')
    const b = this.buffer
    this.start = at
    this.time = b.readDoubleLE(at + 4)
    this.time_ns = b.readDoubleLE(at + 12)
    const kind = b[at + 20] as number
    this.kind = kind & ~latin1Id
    const idBytes = b.readUInt32LE(at + 21)
    this.textStart = at + headerBytes + idBytes
    this.id = b.toString(kind & latin1Id ? 'latin1' : 'utf16le', at + headerBytes, this.textStart)
    this.end = at + 4 + length
    this.lineCache = undefined
    this.textCache = undefined
    return true
  }

  copyTo(out: ReturnType<typeof createRecordOutput>): void {
    out.write(this.buffer, this.start, this.end)
  }

  /**
   * Where `bytes` bytes from `at` can be read: `at` when they are in the buffer, else 0 after moving what
   * is left to the buffer's start and reading on (growing the buffer for a record larger than it); -1 when
   * the run ends first (`filled` then says how many bytes were left over).
   */
  private readable(at: number, bytes: number): number {
    if (this.filled - at >= bytes) return at
    const kept = this.filled - at
    if (bytes > this.buffer.length) {
      const bigger = Buffer.allocUnsafe(Math.max(bytes, this.buffer.length * 2))
      this.buffer.copy(bigger, 0, at, this.filled)
      this.buffer = bigger
    } else this.buffer.copy(this.buffer, 0, at, this.filled)
    this.filled = kept
    this.end = 0
    while (this.filled < bytes) {
      const read =
        this.fd === undefined
          ? 0
          : readSync(this.fd, this.buffer, this.filled, this.buffer.length - this.filled, null)
      if (read === 0) {
        this.close()
        return -1
      }
      this.filled += read
    }
    return 0
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
  }
}

export type MergeOptions = {
  /** Most runs open at once; more overlapping runs are merged in passes first. */
  fanIn?: number
  /** Bytes read from a run at a time. */
  readBytes?: number
  /** A fresh path for a merged run. */
  newRunPath: () => string
  /** Told of each merged run written. */
  onRun?: (run: RunInfo) => void
}

/** A run to merge: a file, or the records still in memory. */
type Source = { first: SortKey; last: SortKey; path?: string; memory?: MemoryRun }

/**
 * Every record of the runs in order; the yielded record is valid until the next one is asked for. Run
 * files are removed as they are merged.
 */
export function* mergeRuns(
  files: readonly RunInfo[],
  memory: MemoryRun | undefined,
  options: MergeOptions,
): Generator<Keyed> {
  const fanIn = options.fanIn ?? 64
  const readBytes = options.readBytes ?? 256 * 1024
  let sources: Source[] = files.map((f) => ({ first: f.first, last: f.last, path: f.path }))
  if (memory && memory.entries.length > 0) {
    const entries = memory.entries
    sources.push({ first: keyOf(entries[0]), last: keyOf(entries.at(-1)), memory })
  }
  const open = (s: Source): Cursor =>
    s.memory ? new MemoryCursor(s.memory.entries) : new FileCursor(s.path as string, readBytes)
  try {
    sources.sort((a, b) => compareKeys(a.first, b.first))
    // Passes over groups of runs adjacent in first key, until no more than fanIn overlap.
    while (mostOverlapping(sources) > fanIn) {
      const next: Source[] = []
      for (let at = 0; at < sources.length; at += fanIn) {
        const group = sources.slice(at, at + fanIn)
        if (group.length === 1) {
          next.push(group[0] as Source)
          continue
        }
        const path = options.newRunPath()
        const out = createRecordOutput(path)
        let count = 0
        let first: SortKey | undefined
        let last: SortKey | undefined
        try {
          for (const record of mergeOpening(group, open)) {
            record.copyTo(out)
            last = keyOf(record)
            first ??= last
            count++
          }
        } finally {
          out.close()
        }
        for (const done of group) if (done.path) rmSync(done.path, { force: true })
        const run = { path, count, first: first as SortKey, last: last as SortKey }
        options.onRun?.(run)
        if (count > 0) next.push(run)
      }
      sources = next.sort((a, b) => compareKeys(a.first, b.first))
    }
    yield* mergeOpening(sources, open)
  } finally {
    for (const s of sources) if (s.path) rmSync(s.path, { force: true })
  }
}

/**
 * Merges sources sorted by first key through a binary heap of cursors, opening each source only when the
 * merge reaches its first key (no record of it can come earlier) and closing it at its end.
 */
function* mergeOpening(sources: readonly Source[], open: (s: Source) => Cursor): Generator<Cursor> {
  const heap: Cursor[] = []
  let next = 0
  try {
    for (;;) {
      while (next < sources.length) {
        const source = sources[next] as Source
        if (heap.length > 0 && compareKeys(source.first, heap[0] as Cursor) > 0) break
        next++
        const cursor = open(source)
        if (!cursor.next()) continue
        heap.push(cursor)
        siftUp(heap, heap.length - 1)
      }
      if (heap.length === 0) return
      const top = heap[0] as Cursor
      yield top
      if (!top.next()) {
        const last = heap.pop() as Cursor
        if (heap.length === 0) continue
        heap[0] = last
      }
      siftDown(heap, 0)
    }
  } finally {
    for (const cursor of heap) cursor.close()
  }
}

/** The most runs whose key ranges hold one point (sources sorted by first key). */
function mostOverlapping(sources: readonly Source[]): number {
  const lasts: SortKey[] = []
  let most = 0
  const less = (a: SortKey, b: SortKey) => compareKeys(a, b) < 0
  for (const s of sources) {
    while (lasts.length > 0 && less(lasts[0] as SortKey, s.first)) {
      const end = lasts.pop() as SortKey
      if (lasts.length === 0) break
      lasts[0] = end
      siftDownBy(lasts, 0, less)
    }
    lasts.push(s.last)
    siftUpBy(lasts, lasts.length - 1, less)
    most = Math.max(most, lasts.length)
  }
  return most
}

const cursorLess = (a: Cursor, b: Cursor) => compareRecords(a, b) < 0
const siftDown = (heap: Cursor[], from: number) => siftDownBy(heap, from, cursorLess)
const siftUp = (heap: Cursor[], from: number) => siftUpBy(heap, from, cursorLess)

function siftDownBy<T>(heap: T[], from: number, less: (a: T, b: T) => boolean): void {
  let at = from
  const item = heap[at] as T
  for (;;) {
    const left = 2 * at + 1
    if (left >= heap.length) break
    const right = left + 1
    const child = right < heap.length && less(heap[right] as T, heap[left] as T) ? right : left
    if (!less(heap[child] as T, item)) break
    heap[at] = heap[child] as T
    at = child
  }
  heap[at] = item
}

function siftUpBy<T>(heap: T[], from: number, less: (a: T, b: T) => boolean): void {
  let at = from
  const item = heap[at] as T
  while (at > 0) {
    const parent = (at - 1) >> 1
    if (!less(item, heap[parent] as T)) break
    heap[at] = heap[parent] as T
    at = parent
  }
  heap[at] = item
}
