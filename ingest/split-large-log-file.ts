// One large line holding a CloudTrail log file `{"Records":[…]}` → its records, `partItems` at a time, each
// part an item `{"Records":[…]}` numbered from where its first record stood, so that replay never holds the
// file's parsed records together: 2,000,000 empty records (a 6 MB line, 5.9 KB gzipped) were 137 MiB of
// live heap parsed at once. The line is read twice: first to check that it is exactly such a file (each
// record and each member beside `Records` parsed and dropped), so that a broken or too-deep file is left
// whole to splitJsonItems and rejected as before; then to give its records. Members beside `Records`
// (`{"x":1,"Records":[…]}`) are not given: the decoder reads nothing else of a log file. Anything else (a
// broken bracket, a Falco alert's members) is left to splitJsonItems too. A large line of one JSON array
// is read the same way, element by element, and an element that is a log file record by record, as a line
// of its own.

import { checkedDepth, failed, memberAt, recordSpans, type Span, tryParse, valueEnd } from './json-spans.ts'
import { depthOf, firstNonSpace, parseJson } from './json-text.ts'
import type { JsonItem } from './split-json-items.ts'

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
  for (const span of recordSpans(line, open, endsLine(line))) {
    if (span === undefined) return undefined
    if (!checkElement(line.slice(...span), maxDepth) && tryParse(line, span) === failed) return undefined
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
  for (const span of recordSpans(line, open, endsLine(line))) {
    const text = line.slice(...(span as Span))
    // Checked again rather than remembered from the first read: a line of a million small log files
    // would have held a mark for each (such an element is read three times, a line of its own twice).
    const logFile = checkElement(text, maxDepth)
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
 * `text` checked as splitJsonItems would parse it, member by member (each parsed and dropped, the records of
 * a `Records` array one by one): undefined when it is not one well-formed object whose last `Records`
 * member (duplicate keys: the last wins, as in JSON.parse) is an array, when a member it keeps nests
 * deeper than `maxDepth` - 1 or a record deeper than `maxDepth` - 2, or when its members make it a Falco
 * alert to the decoder (`priority` and `rule`).
 */
function checkLogFile(text: string, maxDepth: number): LogFile | undefined {
  const brace = firstNonSpace(text)
  if (brace === -1 || text.charCodeAt(brace) !== 123) return undefined
  let logFile: LogFile | undefined
  /** The names of the members whose last value nests too deep. */
  const tooDeep = new Set<string>()
  let falco = 0
  for (let at = firstNonSpace(text, brace + 1); ; at = firstNonSpace(text, at + 1)) {
    const member = memberAt(text, at)
    if (member === undefined) return undefined
    let end: number
    let deep: boolean
    if (member.name === 'Records' && text.charCodeAt(member.value) === 91) {
      const records = checkRecords(text, member.value, maxDepth)
      if (records === undefined) return undefined
      ;({ end, deep } = records)
      logFile = { open: member.value, notification: records.notification }
    } else {
      end = valueEnd(text, member.value)
      const depth = end === -1 ? undefined : checkedDepth(text, [member.value, end], maxDepth)
      if (depth === undefined) return undefined
      deep = 1 + depth > maxDepth
      if (member.name === 'Records') logFile = undefined
      if (member.name === 'priority') falco |= 1
      if (member.name === 'rule' || member.name === 'Rule') falco |= 2
      // An alert: its other members (output_fields, the largest) are not read for nothing.
      if (falco === 3) return undefined
    }
    if (deep) tooDeep.add(member.name)
    else tooDeep.delete(member.name)
    at = firstNonSpace(text, end)
    if (at !== -1 && text.charCodeAt(at) === 44) continue
    if (at === -1 || text.charCodeAt(at) !== 125 || firstNonSpace(text, at + 1) !== -1) return undefined
    return tooDeep.size === 0 ? logFile : undefined
  }
}

/**
 * checkLogFile for an element of an array line. A small object (an alert, a record) not opening with
 * `"Records":[` is parsed whole all the same: walking its members took an 8 MiB line of records from 128 to
 * 322 ms, and its records, if any, are few.
 */
const checkElement = (text: string, maxDepth: number) =>
  text.length < 64 * 1024 && !opensWithRecords(text) ? undefined : checkLogFile(text, maxDepth)

/** Whether the text starts `{"Records":[`, give or take spaces. */
function opensWithRecords(text: string): boolean {
  const key = firstNonSpace(text, firstNonSpace(text) + 1)
  if (!text.startsWith('"Records"', key)) return false
  const colon = firstNonSpace(text, key + 9)
  return (
    colon !== -1 && text.charCodeAt(colon) === 58 && text.charCodeAt(firstNonSpace(text, colon + 1)) === 91
  )
}

/**
 * The records of the array opened at `open`, each parsed and dropped: where the array ends, whether a record
 * nests deeper than `maxDepth` - 2, and the first record naming an S3 object; undefined when one is broken.
 */
function checkRecords(text: string, open: number, maxDepth: number) {
  let end = -1
  let deep = false
  let notification: unknown
  const ended = (close: number) => {
    end = close + 1
    return true
  }
  for (const span of recordSpans(text, open, ended)) {
    if (span === undefined) return undefined
    const record = tryParse(text, span)
    if (record === failed) return undefined
    // The item is the object, its Records array, then the record: as splitJsonItems counts its depth.
    deep ||= 2 + depthOf(record, maxDepth) > maxDepth
    if (notification === undefined && namesS3Object(record)) notification = record
  }
  return { end, deep, notification }
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
  for (const span of recordSpans(line, open, () => true)) {
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

/** Whether nothing but spaces follows the `]` of an array that is the whole line. */
const endsLine = (line: string) => (close: number) => firstNonSpace(line, close + 1) === -1
