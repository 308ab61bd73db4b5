// A request body or a file → JSON items: one JSON value, a JSON array of values, or NDJSON (one value
// per line). Each item keeps its position and its original text (for the dead-letter topic). Integers
// beyond 2^53 (Falco's 19-digit `evt.time`) are kept as their decimal strings instead of being rounded.
import { NerveError } from '../runtime/errors.ts'
import {
  depthOf,
  firstNonSpace,
  isSpace,
  lastNonSpace,
  parseJson,
  parseJsonText,
  parseJsonWithin,
  tooMany,
} from './json-text.ts'
import { splitJsonDocumentInParts } from './split-json-document.ts'

export { parseJson } from './json-text.ts'

/**
 * `file`: set by read-replay-files, so rejections can name the file they came from. `text`: the text
 * JSON.parse read to make `value` (the item's own, its unsafe integers quoted), when the value was parsed
 * alone from it (an NDJSON line, a single document; not an element of an array parsed whole).
 */
export type JsonItem =
  | {
      index: number
      value: unknown
      error?: undefined
      original(): string
      file?: string
      text?: string
      /** Set by replay on part of a log file: the file position of its first record (0 when absent). */
      recordsFrom?: number
    }
  | { index: number; value?: undefined; error: string; original(): string; file?: string; text?: undefined }

/**
 * `texts`: give each item parsed alone its JsonItem.text (ingest's CloudTrail routes; the bus writes it).
 * `oneDocument`: the text is one document over several lines (replay saw its lines hold one, HeldDocument):
 * when broken, it is one rejection, never read as NDJSON line by line.
 * `parseFirst` (replay): an object with more brackets than `maxDepth` (a log file), walked for its depth
 * anyway, is parsed before any big-integer scan, and the walk says whether the scan must run
 * (parseJsonWithin). The same items; a text holding an integer beyond 2^53 is parsed twice.
 */
export type SplitLimits = {
  maxItems: number
  maxDepth: number
  texts?: boolean
  oneDocument?: boolean
  parseFirst?: boolean
}

/** Splits `text` into items; throws PAYLOAD_TOO_LARGE over `maxItems`, INPUT_INVALID when empty. */
export function splitJsonItems(text: string, limits: SplitLimits): JsonItem[] {
  const start = firstNonSpace(text)
  if (start === -1)
    throw new NerveError('INPUT_INVALID', 'The body is empty: expected JSON, a JSON array or NDJSON.')
  // NDJSON is recognized by its first line alone, so a large batch is never parsed as one document first.
  let lines: string[] | undefined
  if (!limits.oneDocument && hasSecondLine(text, start)) {
    lines = nonEmptyLines(text)
    const first = tryParse(lines[0] as string, limits)
    if (first.ok) return lineItems(lines, first, limits)
  }
  // An object with enough brackets to nest too deep (a log file) is walked anyway: for replay, parsed and
  // walked together (parseJsonWithin), which spares most such texts the big-integer scan.
  const counted = limits.parseFirst === true && !limits.texts && text.charCodeAt(start) === 123
  const walked = counted ? shallowLimit(text, limits.maxDepth) : undefined
  const within = walked === undefined ? undefined : tryParseWithin(text, walked)
  if (within?.ok) return [within.item]
  const whole = within ?? tryParse(text, limits)
  if (whole.ok) {
    if (Array.isArray(whole.value)) return arrayItems(text, whole.value, limits)
    const limit = counted ? walked : shallowLimit(text, limits.maxDepth)
    return [item(0, whole.value, () => text.trim(), limit, whole.read?.trim())]
  }
  // A broken first line must not drop the good lines after it (the sender controls that line): when the
  // text is no one document but a later line parses to an object, it is NDJSON with a bad line, rejected alone.
  if (lines && lines.length <= limits.maxItems && lines.slice(1).some(isObjectLine)) {
    return lineItems(lines, tryParse(lines[0] as string, limits), limits)
  }
  return [{ index: 0, error: `not valid JSON: ${whole.error}`, original: () => text }]
}

/**
 * The items of splitJsonItems, a part at a time, for a large body: NDJSON lines are parsed as each part is
 * asked for (parts of about `partChars` characters), so a caller can give the event loop back between
 * parts; one document is read and parsed in parts by splitJsonDocumentInParts (an empty part is only a
 * place to give the loop back). A broken document is parsed at once and comes as one part.
 */
export function* splitJsonItemsInParts(
  text: string,
  limits: SplitLimits,
  partChars: number,
): Generator<JsonItem[], void, undefined> {
  const start = firstNonSpace(text)
  const lines = start !== -1 && hasSecondLine(text, start) ? nonEmptyLines(text) : undefined
  const first = lines ? tryParse(lines[0] as string, limits) : undefined
  if (!lines || !first?.ok) {
    // One document (an array, a log file): read and parsed in parts too, unless it is broken.
    if (!(yield* splitJsonDocumentInParts(text, limits, partChars))) yield splitJsonItems(text, limits)
    return
  }
  if (lines.length > limits.maxItems) throw tooMany(lines.length, limits.maxItems)
  let part: JsonItem[] = []
  let chars = 0
  for (const [index, line] of lines.entries()) {
    part.push(lineItem(index, line, index === 0 ? first : tryParse(line, limits), limits))
    chars += line.length
    if (chars >= partChars) {
      yield part
      part = []
      chars = 0
    }
  }
  if (part.length > 0) yield part
}

type Parsed = ReturnType<typeof tryParse>

/** Whether `line` parses, alone, to a JSON object (or array). */
export const isObjectLine = (line: string) => {
  const parsed = tryParse(line, noTexts)
  return parsed.ok && typeof parsed.value === 'object' && parsed.value !== null
}

function lineItems(lines: string[], first: Parsed, limits: SplitLimits): JsonItem[] {
  if (lines.length > limits.maxItems) throw tooMany(lines.length, limits.maxItems)
  return lines.map((line, index) =>
    lineItem(index, line, index === 0 ? first : tryParse(line, limits), limits),
  )
}

const lineItem = (index: number, line: string, parsed: Parsed, limits: SplitLimits): JsonItem =>
  parsed.ok
    ? item(index, parsed.value, () => line, shallowLimit(line, limits.maxDepth), parsed.read)
    : { index, error: `not valid JSON: ${parsed.error}`, original: () => line }

const noTexts = { texts: false }

function tryParse(
  text: string,
  options: { texts?: boolean },
): { ok: true; value: unknown; read?: string } | { ok: false; error: string } {
  try {
    if (!options.texts) return { ok: true, value: parseJson(text) }
    const { value, read } = parseJsonText(text)
    return { ok: true, value, read }
  } catch (err) {
    return { ok: false, error: (err as Error).message }
  }
}

/** tryParse and item() of a whole text in one (parseJsonWithin), for an object walked anyway. */
function tryParseWithin(
  text: string,
  maxDepth: number,
): { ok: true; item: JsonItem } | { ok: false; error: string } {
  const original = () => text.trim()
  try {
    const within = parseJsonWithin(text, maxDepth)
    if (within === undefined)
      return { ok: true, item: { index: 0, error: `nested deeper than ${maxDepth} levels`, original } }
    return { ok: true, item: { index: 0, value: within.value, original, text: undefined, file: undefined } }
  } catch (err) {
    return { ok: false, error: (err as Error).message }
  }
}

/** `maxDepth`, or undefined when the text has too few brackets to nest deeper: nothing to walk then. */
function shallowLimit(text: string, maxDepth: number): number | undefined {
  let openings = 0
  for (const bracket of ['{', '[']) {
    for (let i = text.indexOf(bracket); i !== -1; i = text.indexOf(bracket, i + 1)) {
      if (++openings > maxDepth) return maxDepth
    }
  }
  return undefined
}

function item(
  index: number,
  value: unknown,
  original: () => string,
  maxDepth: number | undefined,
  text?: string,
): JsonItem {
  if (maxDepth !== undefined && depthOf(value, maxDepth) > maxDepth)
    return { index, error: `nested deeper than ${maxDepth} levels`, original }
  // `file` is set by replay (read-replay-files.ts): made here, setting it does not grow every item.
  return { index, value, original, text, file: undefined }
}

function arrayItems(text: string, values: unknown[], limits: SplitLimits): JsonItem[] {
  if (values.length > limits.maxItems) throw tooMany(values.length, limits.maxItems)
  let spans: [number, number][] | undefined
  const original = (i: number) => () => {
    spans ??= arrayElementSpans(text)
    const span = spans[i]
    return span ? text.slice(span[0], span[1]) : JSON.stringify(values[i])
  }
  const maxDepth = shallowLimit(text, limits.maxDepth)
  return values.map((value, index) => item(index, value, original(index), maxDepth))
}

/** [start, end) of each element of the top-level array in `text` (which is valid JSON). */
function arrayElementSpans(text: string): [number, number][] {
  const spans: [number, number][] = []
  let depth = 0
  let inString = false
  let elementStart = -1
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++
      else if (c === 34) inString = false
      continue
    }
    if (c === 34) inString = true
    if (c === 91 || c === 123) {
      depth++
      if (depth === 1) {
        elementStart = -1
        continue
      }
    } else if (c === 93 || c === 125) {
      depth--
      if (depth === 0) {
        if (elementStart !== -1) spans.push([elementStart, lastNonSpace(text, i) + 1])
        break
      }
    } else if (c === 44 && depth === 1) {
      spans.push([elementStart, lastNonSpace(text, i) + 1])
      elementStart = -1
      continue
    }
    if (depth >= 1 && elementStart === -1 && !isSpace(c)) elementStart = i
  }
  return spans
}

/** Whether a non-empty line follows the one holding `start` (a single alert is not split into lines). */
function hasSecondLine(text: string, start: number): boolean {
  const newline = text.indexOf('\n', start)
  return newline !== -1 && firstNonSpace(text, newline + 1) !== -1
}

function nonEmptyLines(text: string): string[] {
  const lines: string[] = []
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (firstNonSpace(line) !== -1) lines.push(line)
  }
  return lines
}
