// An external sort of replay's decoded events under a memory budget, for `nerve replay --order time`.
// Each decoder (a decoding thread, or the main thread) adds its events to a run writer: a binary record
// each (sorted-run-records.ts: its sort key, a kind, and a text: the ignored reason of a time-only
// stand-in, or the normalized event as a JSON line), held in off-heap chunks until they reach the
// writer's budget, then sorted and written to a run file in a private temp dir. The main thread's last
// run may stay in memory.
//
// Merging (merge-sorted-runs.ts) opens a run only when the merge reaches its first key, and closes it
// when it ends: CloudTrail files come named by their time and nearly in order inside, so the runs of
// files decoded in name order barely overlap and few are open at once, whatever the input's size. Only
// when more than `fanIn` runs overlap are they merged in passes first. Merge passes copy records as
// bytes; nothing is parsed but the JSON of the events handed on.
//
// The order is total (time, then nanoseconds, then id, then the record's JSON line), so the output is
// the same whatever the order events were added in, the budget and the number of decoders.
import { rmSync } from 'node:fs'
import {
  chunkBytes,
  compareRecords,
  createRecordOutput,
  Entry,
  headerBytes,
  keyOf,
  latin1Id,
  type MemoryRun,
  type RunInfo,
  type SortKey,
} from './sorted-run-records.ts'

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
  /**
   * Starts a file's records: until commit() they may all be dropped by discard(). A run written while
   * a file is under way (the budget full) holds the earlier files' records only, and the file's own are
   * written as a run apart, told of at commit() and deleted at discard().
   */
  begin(): void
  /** Keeps the records added since begin(). */
  commit(): void
  /** Drops the records added since begin(): their bytes, their runs, their count. */
  discard(): void
  /** Records added so far. */
  count(): number
  /** Writes what is held as a last run. */
  flush(): void
  /** What is held, sorted, to merge from memory (the writer is then empty). */
  takeHeld(): MemoryRun
}

/** What an in-memory record costs beside its bytes: its entry object, key fields and array slot. */
const entryOverhead = 160

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

  /** Where the file under way began (begin()): held entries, bytes, count and write position. */
  let mark = { held: 0, heldBytes: 0, added: 0, chunkAt: -1, used: 0, chunk }
  let staging = false
  /** Runs of the file under way, written when the budget filled: told of at commit(). */
  let pending: RunInfo[] = []
  const setMark = () => {
    mark = { held: held.length, heldBytes, added, chunkAt, used, chunk }
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

  const begin = () => {
    staging = true
    pending = []
    setMark()
  }
  const commit = () => {
    staging = false
    for (const run of pending) options.onRun(run)
    pending = []
    setMark()
  }
  const discard = () => {
    staging = false
    for (const run of pending) rmSync(run.path, { force: true })
    pending = []
    held.length = mark.held
    heldBytes = mark.heldBytes
    added = mark.added
    // The write position goes back too, so that a dropped file's bytes are written over, not held.
    chunkAt = mark.chunkAt
    used = mark.used
    chunk = mark.chunk
  }

  const sorted = (entries: Entry[]) => {
    entries.sort(compareRecords)
    held = []
    heldBytes = 0
    chunkAt = -1
    chunk = Buffer.alloc(0)
    used = 0
    return entries
  }

  const takeHeld = (): MemoryRun => {
    const entries = sorted(held)
    chunks = []
    return { entries }
  }

  const write = (entries: Entry[]): RunInfo => {
    const path = options.newRunPath()
    const out = createRecordOutput(path)
    try {
      for (const e of entries) out.write(e.chunk, e.start, e.end)
    } finally {
      out.close()
    }
    return { path, count: entries.length, first: keyOf(entries[0]), last: keyOf(entries.at(-1)) }
  }

  const flush = () => {
    if (held.length === 0) return
    if (!staging) {
      options.onRun(write(sorted(held)))
      return
    }
    // The earlier files' records and the file under way's go to runs apart: the latter may be dropped.
    const earlier = held.slice(0, mark.held)
    const own = sorted(held.slice(mark.held))
    if (earlier.length > 0) options.onRun(write(earlier.sort(compareRecords)))
    if (own.length > 0) pending.push(write(own))
    // The count to go back to stays the file's start: its records in the pending run count till then.
    const fileStart = mark.added
    setMark()
    mark.added = fileStart
  }

  return { add, count: () => added, flush, takeHeld, begin, commit, discard }
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
