// An external sort of replay's decoded events under a memory budget, for `nerve replay --order time`.
// Each decoder (a decoding thread, or the main thread) adds its events to a run writer: a binary record
// each (its sort key, a kind, and a text: the ignored reason of a time-only stand-in, or the normalized
// event as a JSON line), held in off-heap chunks until they reach the writer's budget, then sorted and
// written to a run file in a private temp dir. The main thread's last run may stay in memory.
//
// Merging opens a run only when the merge reaches its first key, and closes it when it ends: CloudTrail
// files come named by their time and nearly in order inside, so the runs of files decoded in name order
// barely overlap and few are open at once, whatever the input's size. Only when more than `fanIn` runs
// overlap are they merged in passes first. Merge passes copy records as bytes; nothing is parsed but
// the JSON of the events handed on.
//
// The order is total (time, then nanoseconds, then id, then the record's JSON line), so the output is
// the same whatever the order events were added in, the budget and the number of decoders.
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs'

/** What a record sorts by: event time (epoch ms), its nanoseconds, and the event id. */
export type SortKey = { time: number; time_ns: number; id: string }

/** A sorted run on disk: its path, how many records it holds, and the keys of its first and last one. */
export type RunInfo = { path: string; count: number; first: SortKey; last: SortKey }

/** A record's kind: a time-only stand-in (text: the ignored reason) or an event (text: its JSON). */
export const standInKind = 0
export const eventKind = 1
/** Set in the kind byte when the id is stored as latin1 rather than UTF-16. */
const latin1Id = 2

/**
 * A record: u32 length of the rest, f64 time, f64 nanoseconds, u8 kind, u32 id bytes, the id (latin1
 * when every character fits, else UTF-16: a JSON string may hold lone surrogates, which UTF-8 would
 * lose), the text (UTF-8: the JSON of JSON.stringify is well-formed).
 */
const headerBytes = 25

/** A record with its key: what the sort and the merge compare. */
export type Keyed = SortKey & {
  kind: number
  /** The record's text (its bytes decoded). */
  text(): string
}

/** An in-memory entry of a run writer: its key and where its record sits. */
class Entry implements Keyed {
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
function lineOf(record: Keyed): string {
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

type WithLine = Keyed & { line(): string }

export function compareRecords(a: WithLine, b: WithLine): number {
  const byKey = compareKeys(a, b)
  if (byKey !== 0) return byKey
  const x = a.line()
  const y = b.line()
  return x < y ? -1 : x > y ? 1 : 0
}

export type RunWriterOptions = {
  /** Bytes of records (plus a per-record overhead) held before a run is written. */
  budgetBytes: number
  /** A fresh path in the spill's private temp dir, for each run written. */
  newRunPath: () => string
  /** Told of each run written. */
  onRun: (run: RunInfo) => void
}

export type RunWriter = {
  add(key: SortKey, kind: number, text: string): void
  /** Records added so far. */
  count(): number
  /** Writes what is held as a last run. */
  flush(): void
  /** What is held, sorted, to merge from memory (the writer is then empty). */
  takeHeld(): MemoryRun
}

/** A sorted run still in memory. */
export type MemoryRun = { entries: Entry[] }

/** What an in-memory record costs beside its bytes: its entry object, key fields and array slot. */
const entryOverhead = 160
const chunkBytes = 1 << 20

export function createRunWriter(options: RunWriterOptions): RunWriter {
  let held: Entry[] = []
  let heldBytes = 0
  let added = 0
  // The chunks records are written into, reused after each run is written: a fresh Buffer is freed only
  // when a full garbage collection finds it dead, so new chunks for each run piled up to several budgets.
  let chunks: Buffer[] = []
  let chunkAt = -1
  let chunk: Buffer = Buffer.alloc(0)
  let used = 0

  const room = (bytes: number) => {
    used = 0
    if (bytes > chunkBytes) {
      // A record larger than a chunk gets a buffer of its own, not kept for reuse.
      chunk = Buffer.allocUnsafe(bytes)
      return
    }
    chunkAt++
    if (chunkAt === chunks.length) chunks.push(Buffer.allocUnsafe(chunkBytes))
    chunk = chunks[chunkAt] as Buffer
  }

  const add = (key: SortKey, kind: number, text: string) => {
    const most = headerBytes + key.id.length * 2 + text.length * 3
    if (used + most > chunk.length) room(most)
    const start = used
    let idBytes = writeLatin1(chunk, key.id, start + headerBytes)
    const latin1 = idBytes !== -1
    if (!latin1) idBytes = chunk.write(key.id, start + headerBytes, 'utf16le')
    const textStart = start + headerBytes + idBytes
    const end = textStart + writeUtf8(chunk, text, textStart)
    chunk.writeUInt32LE(end - start - 4, start)
    chunk.writeDoubleLE(key.time, start + 4)
    chunk.writeDoubleLE(key.time_ns, start + 12)
    chunk[start + 20] = kind | (latin1 ? latin1Id : 0)
    chunk.writeUInt32LE(idBytes, start + 21)
    used = end
    held.push(new Entry(key.time, key.time_ns, key.id, kind, chunk, start, textStart, end))
    heldBytes += end - start + entryOverhead
    added++
    if (heldBytes >= options.budgetBytes) flush()
  }

  const sorted = () => {
    const entries = held.sort(compareRecords)
    held = []
    heldBytes = 0
    chunkAt = -1
    chunk = Buffer.alloc(0)
    used = 0
    return entries
  }

  const takeHeld = (): MemoryRun => {
    const entries = sorted()
    chunks = []
    return { entries }
  }

  const flush = () => {
    if (held.length === 0) return
    const entries = sorted()
    const path = options.newRunPath()
    const out = createRecordOutput(path)
    try {
      for (const e of entries) out.write(e.chunk, e.start, e.end)
    } finally {
      out.close()
    }
    options.onRun({ path, count: entries.length, first: keyOf(entries[0]), last: keyOf(entries.at(-1)) })
  }

  return { add, count: () => added, flush, takeHeld }
}

const keyOf = (record: SortKey | undefined): SortKey => {
  const r = record as SortKey
  return { time: r.time, time_ns: r.time_ns, id: r.id }
}

/**
 * Writes `text` as latin1 at `at` and gives its byte count, or -1 (having written part of it) when a
 * character does not fit a byte. A loop here: an id is some 36 to 64 characters, for which Buffer.write's
 * call into C++ and a regular expression to pick the encoding cost more than the copy.
 */
function writeLatin1(chunk: Buffer, text: string, at: number): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c > 0xff) return -1
    chunk[at + i] = c
  }
  return text.length
}

/** Writes `text` as UTF-8 at `at`, a short ASCII text (a stand-in's ignored reason) by a loop. */
function writeUtf8(chunk: Buffer, text: string, at: number): number {
  if (text.length > 32) return chunk.write(text, at, 'utf8')
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c > 0x7f) return chunk.write(text, at, 'utf8')
    chunk[at + i] = c
  }
  return text.length
}

/** Writes records to a new run file (mode 0600) through a 1 MiB buffer. */
function createRecordOutput(path: string) {
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
