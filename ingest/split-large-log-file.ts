// One large line holding a CloudTrail log file `{"Records":[…]}` → its records, `partItems` at a time, each
// part an item `{"Records":[…]}` numbered from where its first record stood, so that replay never holds the
// file's parsed records together: 2,000,000 empty records (a 6 MB line, 5.9 KB gzipped) were 137 MiB of
// live heap parsed at once. The line is read twice: first to check that it is exactly such a file (each
// record parsed and dropped), so that a broken or too-deep file is left whole to splitJsonItems and
// rejected as before; then to give its records. Anything else (another member, a broken bracket) is
// left to splitJsonItems too. A large line of one JSON array is read the same way, element by element,
// and an element that is exactly a log file record by record, as a line of its own.
import { closingQuote, depthOf, firstNonSpace, isSpace, lastNonSpace, parseJson } from './json-text.ts'
import type { JsonItem } from './split-json-items.ts'

type Span = [number, number]

/** A line of at least this many characters is split here (an hourly CloudTrail file is about 1.25 MB). */
export const largeLineChars = 4 * 1024 * 1024

/**
 * The line's records in items of at most `partItems` records (index 0: the caller numbers them), or
 * undefined when the line is not one well-formed log file whose records nest at most `maxDepth` - 2 deep.
 */
export function splitLargeLogFile(
  line: string,
  maxDepth: number,
  partItems: number,
): Generator<JsonItem[]> | undefined {
  const logFile = checkLogFile(line, maxDepth)
  return logFile && logFileParts(line, logFile, partItems)
}

/**
 * The elements of a line that is one JSON array, as splitJsonItems gives them (an element nested deeper
 * than `maxDepth` an error item), numbered from 0, in parts of at most `partItems` items; undefined when the
 * line is not one well-formed array. An element that is exactly a log file comes in parts of its own, of
 * at most `partItems` records, as splitLargeLogFile gives a line; a part ends after any other element of
 * `partItems` records or more, for the caller to cut (partsOf): the records of 250 elements of many records
 * each were decoded together.
 */
export function splitLargeArray(
  line: string,
  maxDepth: number,
  partItems: number,
): Generator<JsonItem[]> | undefined {
  const open = firstNonSpace(line)
  if (open === -1 || line.charCodeAt(open) !== 91) return undefined
  for (const span of recordSpans(line, open, false)) {
    if (span === undefined) return undefined
    if (!checkLogFile(line.slice(...span), maxDepth) && tryParse(line, span) === failed) return undefined
  }
  return elementParts(line, open, maxDepth, partItems)
}

function* elementParts(
  line: string,
  open: number,
  maxDepth: number,
  partItems: number,
): Generator<JsonItem[]> {
  let part: JsonItem[] = []
  let records = 0
  let index = 0
  for (const span of recordSpans(line, open, false)) {
    const text = line.slice(...(span as Span))
    // Checked again rather than remembered from the first read: a line of a million small log files
    // would have held a mark for each (such an element is read three times, a line of its own twice).
    const logFile = checkLogFile(text, maxDepth)
    if (logFile) {
      if (part.length > 0) yield part
      part = []
      records = 0
      for (const items of logFileParts(text, logFile, partItems)) {
        for (const item of items) item.index = index
        yield items
      }
      index++
      continue
    }
    const value = parseJson(text)
    const original = () => text
    part.push(
      depthOf(value, maxDepth) > maxDepth
        ? { index: index++, error: `nested deeper than ${maxDepth} levels`, original }
        : { index: index++, value, original },
    )
    records += recordsIn(value)
    if (part.length === partItems || records >= partItems) {
      yield part
      part = []
      records = 0
    }
  }
  if (part.length > 0) yield part
}

/** The records an item of this value gives the decoder: those of a log file, else the value itself. */
const recordsIn = (value: unknown) => {
  const records = (value as { Records?: unknown } | null)?.Records
  return Array.isArray(records) ? records.length : 1
}

/**
 * A log file checked record by record: where its Records array opens, and the first of its records naming
 * an S3 object, if any.
 */
type LogFile = { open: number; notification?: unknown }

/**
 * `text` checked as splitJsonItems would parse it (each record parsed and dropped): undefined when it is not
 * one well-formed log file whose records nest at most `maxDepth` - 2 deep.
 */
function checkLogFile(text: string, maxDepth: number): LogFile | undefined {
  const open = recordsOpen(text)
  if (open === -1) return undefined
  let notification: unknown
  for (const span of recordSpans(text, open)) {
    if (span === undefined) return undefined
    const record = tryParse(text, span)
    // The item is the object, its Records array, then the record: as splitJsonItems counts its depth.
    if (record === failed || 2 + depthOf(record, maxDepth) > maxDepth) return undefined
    if (notification === undefined && namesS3Object(record)) notification = record
  }
  return { open, notification }
}

/**
 * A file naming an S3 object among its records is skipped whole as a notification when decoded
 * (unwrap-cloudtrail-envelopes.ts), as partsOf leaves it uncut: that record stands for the file, so that
 * none of its other records is decoded nor held. Else the file's records, a part at a time.
 */
function* logFileParts(text: string, logFile: LogFile, partItems: number): Generator<JsonItem[]> {
  if (logFile.notification === undefined) yield* recordParts(text, logFile.open, partItems)
  else yield [{ index: 0, value: { Records: [logFile.notification] }, original: () => text.trim() }]
}

const namesS3Object = (record: unknown) =>
  typeof record === 'object' && (record as { eventSource?: unknown } | null)?.eventSource === 'aws:s3'

function* recordParts(line: string, open: number, partItems: number): Generator<JsonItem[]> {
  const original = () => line.trim()
  let records: unknown[] = []
  let from = 0
  for (const span of recordSpans(line, open)) {
    records.push(parseJson(line.slice(...(span as Span))))
    if (records.length === partItems) {
      yield [{ index: 0, value: { Records: records }, original, recordsFrom: from }]
      from += records.length
      records = []
    }
  }
  if (records.length > 0 || from === 0)
    yield [{ index: 0, value: { Records: records }, original, recordsFrom: from }]
}

/** The position of the `[` of a line that opens `{"Records":[`, give or take spaces; else -1. */
function recordsOpen(line: string): number {
  const brace = firstNonSpace(line)
  if (brace === -1 || line.charCodeAt(brace) !== 123) return -1
  const key = firstNonSpace(line, brace + 1)
  if (!line.startsWith('"Records"', key)) return -1
  const colon = firstNonSpace(line, key + 9)
  if (colon === -1 || line.charCodeAt(colon) !== 58) return -1
  const bracket = firstNonSpace(line, colon + 1)
  return bracket !== -1 && line.charCodeAt(bracket) === 91 ? bracket : -1
}

/**
 * The spans of the elements of the array opened at `open`, one at a time, then undefined when the array is
 * not followed by the end of the line (by `}` then the end, `inObject`), or its commas or brackets do not balance. Brackets are
 * counted, not matched: each span is parsed, which checks it.
 */
function* recordSpans(line: string, open: number, inObject = true): Generator<Span | undefined> {
  let depth = 0
  let start = -1
  for (let i = open + 1; i < line.length; i++) {
    const c = line.charCodeAt(i)
    if (c === 34) {
      if (start === -1) start = i
      i = closingQuote(line, i)
      if (i === -1) break
    } else if (c === 123 || c === 91) {
      if (start === -1) start = i
      depth++
    } else if ((c === 125 || c === 93) && depth > 0) depth--
    else if (c === 93) {
      if (start !== -1) yield [start, lastNonSpace(line, i) + 1]
      else if (i !== firstNonSpace(line, open + 1)) break
      const brace = firstNonSpace(line, i + 1)
      if (!inObject && brace === -1) return
      if (inObject && brace !== -1 && line.charCodeAt(brace) === 125 && firstNonSpace(line, brace + 1) === -1)
        return
      break
    } else if (c === 125) break
    else if (c === 44 && depth === 0) {
      if (start === -1) break
      yield [start, lastNonSpace(line, i) + 1]
      start = -1
    } else if (start === -1 && !isSpace(c)) start = i
  }
  yield undefined
}

const failed = Symbol('failed')

function tryParse(line: string, [from, to]: Span): unknown {
  try {
    return parseJson(line.slice(from, to))
  } catch {
    return failed
  }
}
