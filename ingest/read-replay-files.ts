// Files → raw JSON items for `nerve replay`: JSON, JSON arrays, NDJSON, `.gz` (by name or magic bytes),
// log files {"Records":[…]}, EventBridge events, Falco and CloudTrail mixed in one file (the decoder tells
// them apart per item). NDJSON is streamed and handed over in parts of at most `partItems` items, so
// neither a file nor its parsed items need fit in memory at once; a document spread over several lines
// (pretty-printed JSON) is read whole, its lines held up to the line cap while they may be one
// (held-document.ts). For long inputs a progress line goes to the injected writer (stderr in the CLI)
// every `progressEveryItems` items and after each file.
import { createReadStream, statSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { NerveError } from '../runtime/errors.ts'
import { HeldDocument, opensDocument } from './held-document.ts'
import { type LineTooLong, maxReplayLineBytes, readCappedLines } from './read-capped-lines.ts'
import { type JsonItem, splitJsonItems } from './split-json-items.ts'
import { largeLineChars, splitLargeArray, splitLargeLogFile } from './split-large-log-file.ts'

/**
 * Items of one file, numbered from the file's first item; a file may come in several parts. A part with
 * `rejected` (and no items) ends a file whose bytes turned out unusable (a .gz truncated, or with bytes
 * after its gzip data): the file's earlier parts are void, and `rejected` says why, naming the file.
 */
export type ReplayPart = { file: string; items: JsonItem[]; rejected?: string }

export type ReplayReadOptions = {
  maxDepth: number
  /** Receives progress lines (no newline) for inputs of at least `progressMinBytes`. */
  progress?: (line: string) => void
  progressMinBytes?: number
  progressEveryItems?: number
  /**
   * Most items per part (default 250). Small parts let a part's parsed records die young: at 5,000 items
   * (about 20 MiB of CloudTrail objects) they outlived the young generation and were copied twice.
   */
  partItems?: number
  /** Opens a path as bytes (gzip detected by name or magic): local files by default, s3:// in replay. */
  open?: (path: string) => Promise<Readable>
  /** Longest line read (default maxReplayLineBytes); a longer one is a rejected item, never held. */
  maxLineBytes?: number
}

/** The items of every file, in argument order and file order. */
export async function* readReplayParts(
  paths: readonly string[],
  options: ReplayReadOptions,
): AsyncGenerator<ReplayPart> {
  const { progressMinBytes = 32 * 1024 * 1024, progressEveryItems = 100_000 } = options
  const report =
    options.progress && paths.reduce((sum, p) => sum + statSync(p).size, 0) >= progressMinBytes
      ? options.progress
      : undefined
  const open = options.open ?? openMaybeGzipped
  let itemsSoFar = 0
  for (const [n, file] of paths.entries()) {
    const say = (items: number) =>
      report?.(
        `replay: file ${n + 1}/${paths.length} ${file}: ${(itemsSoFar + items).toLocaleString('en')} items read`,
      )
    let count = 0
    const sizes = {
      maxDepth: options.maxDepth,
      partItems: options.partItems ?? 250,
      maxLineBytes: options.maxLineBytes ?? maxReplayLineBytes,
    }
    const parts = fileParts(file, open, sizes, (items) => {
      count = items
      if (items % progressEveryItems === 0) say(items)
    })
    try {
      for await (const items of parts) yield { file, items }
    } catch (err) {
      // A file whose bytes are unusable is rejected alone: its records are not used, the others are.
      // A file that cannot be read at all (gone, a directory, no permission) still ends the replay.
      if (!isUnusableFile(err)) throw err
      yield { file, items: [], rejected: err.message }
      continue
    }
    // Each file ends with its count, unless the line for that count was just written.
    if (count === 0 || count % progressEveryItems !== 0) say(count)
    itemsSoFar += count
  }
}

async function* fileParts(
  file: string,
  open: (path: string) => Promise<Readable>,
  { maxDepth, partItems, maxLineBytes }: { maxDepth: number; partItems: number; maxLineBytes: number },
  onItem: (count: number) => void,
): AsyncGenerator<JsonItem[]> {
  let part: JsonItem[] = []
  // Whether `part` holds a log file of more than partItems records: noted as each item is added, since
  // looking through the whole part after every line read it about partItems / 2 times per line.
  let holdsLarge = false
  const takePart = () => {
    const taken = part
    part = []
    holdsLarge = false
    return taken
  }
  let count = 0
  let mode = 'unknown' as 'unknown' | 'lines'
  /** The lines of a document spread over several lines, while they may be one (pretty-printed JSON). */
  let held: HeldDocument | undefined
  // A log file's depth is walked anyway: parsed first, scanned for big integers only when it holds one.
  const limits = { maxItems: Number.POSITIVE_INFINITY, maxDepth, parseFirst: true }
  const add = (item: JsonItem) => {
    // The items are fresh objects of splitJsonItems: numbered across the file in place, not copied.
    item.index = count++
    item.file = file
    part.push(item)
    if (!holdsLarge && largeLogFileRecords(item, partItems) !== undefined) holdsLarge = true
    onItem(count)
  }
  const addLine = (line: string) => {
    if (line.trim() === '') return
    const items = splitJsonItems(line, limits)
    // The first line is parsed once: a whole JSON value makes the file NDJSON (a CloudTrail log file is
    // one such line); else it may open a document spread over several lines, held until they tell.
    // Parsing it a second time to find out cost a tenth of a replay's CPU.
    if (mode === 'unknown' && isNotJson(items) && opensDocument(line)) {
      held = new HeldDocument(line, maxLineBytes)
      return
    }
    mode = 'lines'
    for (const item of items) add(item)
  }
  // A line over the cap is an unusable item, as a line that is not JSON is: counted, shown, skipped.
  const refuse = ({ lineNumber, head }: LineTooLong) => {
    const error = `${file}: line ${lineNumber} is longer than ${maxLineBytes / 1024 / 1024} MiB (PAYLOAD_TOO_LARGE): skipped without reading it whole.`
    add({ index: 0, error, original: () => head })
  }
  /** Reads the lines a document held, one by one as NDJSON's, and the file's lines after them so. */
  function* release(document: HeldDocument): Generator<JsonItem[]> {
    held = undefined
    mode = 'lines'
    for (const line of document.lines) yield* readLine(line)
  }
  function* readLine(line: string): Generator<JsonItem[]> {
    if (held) {
      const next = held.add(line)
      if (next === 'lines') yield* release(held)
      else if (next === 'tooLong') {
        // As a line over the cap: one rejection, its lines let go as they stream by.
        const error = `${file}: a document over several lines is longer than ${maxLineBytes / 1024 / 1024} MiB (PAYLOAD_TOO_LARGE): skipped without reading it whole.`
        const head = (held.lines[0] ?? '').slice(0, 200)
        add({ index: 0, error, original: () => head })
      }
      return
    }
    const large = line.length >= largeLineChars ? splitLargeLogFile(line, maxDepth, partItems) : undefined
    const array =
      !large && line.length >= largeLineChars ? splitLargeArray(line, maxDepth, partItems) : undefined
    if (array) {
      // A large array: its elements are items, parsed a part at a time, a log file among them cut as
      // on a line of its own. Its parts number elements from 0 (several parts may hold one).
      mode = 'lines'
      yield* partsOf(takePart(), partItems)
      const first = count
      for (const items of array) {
        for (const item of items) {
          Object.assign(item, { index: first + item.index, file })
          if (item.index === count) onItem(++count)
        }
        yield* partsOf(items, partItems)
      }
      return
    }
    if (large) {
      // A large log file: its records are parsed a part at a time, never held together.
      mode = 'lines'
      yield* partsOf(takePart(), partItems)
      const index = count++
      onItem(count)
      for (const items of large) {
        for (const item of items) Object.assign(item, { index, file })
        yield items
      }
      return
    }
    addLine(line)
    if (part.length >= partItems || holdsLarge) yield* partsOf(takePart(), partItems)
  }
  let chunks: AsyncGenerator<(string | LineTooLong)[]>
  try {
    chunks = readCappedLines(await open(file), maxLineBytes)
  } catch (err) {
    throw readError(file, err)
  }
  try {
    for (;;) {
      let next: IteratorResult<(string | LineTooLong)[]>
      try {
        next = await chunks.next()
      } catch (err) {
        throw readError(file, err)
      }
      if (next.done) break
      for (const line of next.value) {
        if (typeof line !== 'string') refuse(line)
        else if (held !== undefined || line.length >= largeLineChars) yield* readLine(line)
        else {
          // readLine's common case without its generator: one made and run per line was 4 % of the
          // instructions of reading NDJSON (callgrind, docs/replay-rounds.md).
          addLine(line)
          if (part.length >= partItems || holdsLarge) yield* partsOf(takePart(), partItems)
        }
      }
    }
  } finally {
    // A reader that stops early (an item failed, a decoding thread stopped) closes the file, as the
    // for await this loop replaced did: else the stream (a file descriptor, an S3 socket) stayed open.
    await chunks.return(undefined)
  }
  if (held) {
    // A document whose lines hold one is one item, or one rejection when broken: not one a line. Broken,
    // it may still be NDJSON whose only good line is its last or its second (HeldDocument.brokenIsLines).
    const items = held.tooLong ? [] : splitJsonItems(held.lines.join('\n'), { ...limits, oneDocument: true })
    if ((held.tooLong || isNotJson(items)) && held.brokenIsLines()) yield* release(held)
    else for (const item of items) add(item)
  }
  yield* partsOf(part, partItems)
}

/**
 * The items in parts of at most `partItems` items, a log file of more than `partItems` records cut into
 * items of at most `partItems` records each (its later ones numbered from where they stood in the file):
 * decoding normalizes a part at once, and one line of `{"Records":[{},{},…]}` (2,000,000 empty records
 * gzip to 5.9 KB) took 2.4 GB when its records were normalized together (docs/threat-model.md).
 */
export function* partsOf(items: readonly JsonItem[], partItems: number): Generator<JsonItem[]> {
  let part: JsonItem[] = []
  for (const item of items) {
    const records = largeLogFileRecords(item, partItems)
    if (records === undefined || item.error !== undefined) part.push(item)
    else {
      if (part.length > 0) yield part
      part = []
      for (let from = 0; from < records.length; from += partItems) {
        const value = { ...(item.value as object), Records: records.slice(from, from + partItems) }
        // Its text is the whole file's: no part was parsed alone from it.
        yield [{ ...item, value, text: undefined, recordsFrom: from }]
      }
    }
    if (part.length >= partItems) {
      yield part
      part = []
    }
  }
  if (part.length > 0) yield part
}

/**
 * The records of a log file of more than `partItems` of them. Not those of a file naming an S3 object
 * among its records: such a file is skipped whole as a notification, which cutting it would change.
 */
function largeLogFileRecords(item: JsonItem, partItems: number): unknown[] | undefined {
  const records = (item.value as { Records?: unknown } | null | undefined)?.Records
  if (!Array.isArray(records) || records.length <= partItems || Array.isArray(item.value)) return undefined
  const s3 = records.some((r) => (r as { eventSource?: unknown } | null)?.eventSource === 'aws:s3')
  return s3 ? undefined : records
}

/**
 * What reading `file` failed with, as the CLI shows it in one line naming the file: a broken gzip stream
 * (truncated, or not gzip at all though named .gz) as INPUT_INVALID; a system error with no path of its
 * own (EISDIR comes from read(), which names none) given the file's. Anything else is left as it is.
 */
export function readError(file: string, err: unknown): unknown {
  const e = err as { code?: unknown; path?: unknown; syscall?: unknown; message?: unknown }
  if (typeof e?.code !== 'string') return err
  if (e.code === 'Z_BUF_ERROR')
    return new NerveError('INPUT_INVALID', `${file}: the gzip data ends early (the file is truncated).`, {
      cause: err,
    })
  if (e.code.startsWith('Z_'))
    return new NerveError('INPUT_INVALID', `${file}: not valid gzip data (${String(e.message)}).`, {
      cause: err,
    })
  if (typeof e.syscall === 'string' && e.path === undefined) (err as { path: string }).path = file
  return err
}

/** Whether reading a file failed on its bytes (broken gzip, an S3 object with no body): INPUT_INVALID. */
export const isUnusableFile = (err: unknown): err is NerveError =>
  err instanceof NerveError && err.code === 'INPUT_INVALID'

/** Whether splitJsonItems found no JSON value in a line (it then gives one item saying so). */
function isNotJson(items: readonly JsonItem[]): boolean {
  const [first] = items
  return items.length === 1 && first?.error?.startsWith('not valid JSON') === true
}

/**
 * Decompressed bytes per chunk of a gzipped input. zlib's default of 16 KiB cut an hourly CloudTrail file
 * (about 1.25 MB decompressed, one line) into about 80 chunks, each a callback, a Buffer and a carried
 * part of the line; at 128 KiB a replay of 500 such files took 4–6 % less CPU (docs/replay-rounds.md).
 */
export const gunzipChunkBytes = 128 * 1024

export async function openMaybeGzipped(file: string): Promise<Readable> {
  // A name ending in .gz is gunzipped whatever its first bytes: reading them first cost an open per file.
  const gzipped = file.endsWith('.gz') || isGzip(await headOf(file))
  const raw = createReadStream(file, { highWaterMark: 1 << 20 })
  if (!gzipped) return raw
  const gunzip = createGunzip({ chunkSize: gunzipChunkBytes })
  // pipe() does not pass a read error on: the gunzip would wait for bytes that never come.
  raw.on('error', (err) => gunzip.destroy(err))
  return raw.pipe(gunzip)
}

const isGzip = (head: Buffer) => head[0] === 0x1f && head[1] === 0x8b

function headOf(file: string): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    createReadStream(file, { start: 0, end: 1 })
      .on('data', (c) => chunks.push(c as Buffer))
      .on('end', () => resolve(Buffer.concat(chunks)))
      .on('error', reject)
  })
}
