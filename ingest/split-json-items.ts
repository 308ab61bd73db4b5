// A request body or a file → JSON items: one JSON value, a JSON array of values, or NDJSON (one value
// per line). Each item keeps its position and its original text (for the dead-letter topic). Integers
// beyond 2^53 (Falco's 19-digit `evt.time`) are kept as their decimal strings instead of being rounded.
import { NerveError } from '../runtime/errors.ts'

/** `file`: set by read-replay-files, so rejections can name the file they came from. */
export type JsonItem =
  | { index: number; value: unknown; error?: undefined; original(): string; file?: string }
  | { index: number; value?: undefined; error: string; original(): string; file?: string }

export type SplitLimits = { maxItems: number; maxDepth: number }

/** Splits `text` into items; throws PAYLOAD_TOO_LARGE over `maxItems`, INPUT_INVALID when empty. */
export function splitJsonItems(text: string, limits: SplitLimits): JsonItem[] {
  const start = firstNonSpace(text)
  if (start === -1)
    throw new NerveError('INPUT_INVALID', 'The body is empty: expected JSON, a JSON array or NDJSON.')
  // NDJSON is recognized by its first line alone, so a large batch is never parsed as one document first.
  let lines: string[] | undefined
  if (hasSecondLine(text, start)) {
    lines = nonEmptyLines(text)
    const first = tryParse(lines[0] as string)
    if (first.ok) return lineItems(lines, first, limits)
  }
  const whole = tryParse(text)
  if (whole.ok) {
    if (Array.isArray(whole.value)) return arrayItems(text, whole.value, limits)
    return [item(0, whole.value, () => text.trim(), shallowLimit(text, limits.maxDepth))]
  }
  // A broken first line must not drop the good lines after it (the sender controls that line): when the
  // text is no one document but a later line parses to an object, it is NDJSON with a bad line, rejected alone.
  if (lines && lines.length <= limits.maxItems && lines.slice(1).some(isObjectLine)) {
    return lineItems(lines, tryParse(lines[0] as string), limits)
  }
  return [{ index: 0, error: `not valid JSON: ${whole.error}`, original: () => text }]
}

/**
 * The items of splitJsonItems, a part at a time, for a large body: NDJSON lines are parsed as each part is
 * asked for (parts of about `partChars` characters), so a caller can give the event loop back between
 * parts. Any other body (one document, an array) is parsed at once and comes as one part.
 */
export function* splitJsonItemsInParts(
  text: string,
  limits: SplitLimits,
  partChars: number,
): Generator<JsonItem[], void, undefined> {
  const start = firstNonSpace(text)
  const lines = start !== -1 && hasSecondLine(text, start) ? nonEmptyLines(text) : undefined
  const first = lines ? tryParse(lines[0] as string) : undefined
  if (!lines || !first?.ok) {
    yield splitJsonItems(text, limits)
    return
  }
  if (lines.length > limits.maxItems) throw tooMany(lines.length, limits.maxItems)
  let part: JsonItem[] = []
  let chars = 0
  for (const [index, line] of lines.entries()) {
    part.push(lineItem(index, line, index === 0 ? first : tryParse(line), limits))
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

const isObjectLine = (line: string) => {
  const parsed = tryParse(line)
  return parsed.ok && typeof parsed.value === 'object' && parsed.value !== null
}

function lineItems(lines: string[], first: Parsed, limits: SplitLimits): JsonItem[] {
  if (lines.length > limits.maxItems) throw tooMany(lines.length, limits.maxItems)
  return lines.map((line, index) => lineItem(index, line, index === 0 ? first : tryParse(line), limits))
}

const lineItem = (index: number, line: string, parsed: Parsed, limits: SplitLimits): JsonItem =>
  parsed.ok
    ? item(index, parsed.value, () => line, shallowLimit(line, limits.maxDepth))
    : { index, error: `not valid JSON: ${parsed.error}`, original: () => line }

/** JSON.parse that keeps unsafe integers as strings. */
export function parseJson(text: string): unknown {
  const quoted = quoteBigRuns(text)
  if (quoted === text) return JSON.parse(text)
  // Quoting a run that sits inside a string ends that string just before a digit or `-` (a run starts
  // after `:`, `,`, `[` or whitespace, never after a backslash): never valid JSON. So when the text with
  // every run quoted parses, no run was inside a string, and this is the exact parse. Otherwise (broken
  // JSON, or a string holding `:` and 16 digits) the strings are stepped over to quote only real integers.
  try {
    return JSON.parse(quoted)
  } catch {
    return JSON.parse(bigIntegersAsStrings(text))
  }
}

/** `text` with every run of bigRunFrom beyond 2^53 quoted, whether or not it sits inside a string. */
function quoteBigRuns(text: string): string {
  let out = ''
  let copied = 0
  for (let run = bigRunFrom(text, 15); run !== undefined; run = bigRunFrom(text, run.end + 16)) {
    if (isSafeIntegerText(text, run.digits, run.end)) continue
    out += `${text.slice(copied, run.start)}"${text.slice(run.start, run.end)}"`
    copied = run.end
  }
  return copied === 0 ? text : out + text.slice(copied)
}

/**
 * Quotes every integer literal beyond 2^53 outside strings: a run of 16 or more digits (with its minus
 * sign) where a value starts (at the start, or after `:`, `,` or `[` and whitespace), not followed by a
 * fraction or an exponent. Such runs are found reading about one character in 16 (bigRunFrom); only for
 * those is it settled whether they sit inside a string, by reading the text before them. A Falco alert's
 * 19-digit `evt.time` costs the text up to it, not the whole text.
 */
function bigIntegersAsStrings(text: string): string {
  let out = ''
  let copied = 0
  // Everything before `outside` has been read; `outside` itself is not inside a string.
  let outside = 0
  for (let run = bigRunFrom(text, 15); run !== undefined; run = bigRunFrom(text, run.end + 16)) {
    // A run before `outside` lies in the string that held the previous run (runs hold no quote).
    if (run.digits < outside) continue
    const after = stringAround(text, outside, run.digits)
    outside = after === -1 ? run.digits : after
    if (after !== -1) continue
    if (isSafeIntegerText(text, run.digits, run.end)) continue
    out += `${text.slice(copied, run.start)}"${text.slice(run.start, run.end)}"`
    copied = run.end
  }
  return copied === 0 ? text : out + text.slice(copied)
}

/**
 * Steps over the strings from `from` (not inside a string) up to `at`: -1 when `at` is outside every
 * string, else the position after the string holding it (the text's end when it is never closed).
 * Native indexOf per quote: a loop over the characters reads about four times slower.
 */
function stringAround(text: string, from: number, at: number): number {
  let open = text.indexOf('"', from)
  while (open !== -1 && open < at) {
    const close = closingQuote(text, open)
    if (close === -1) return text.length
    if (close > at) return close + 1
    open = text.indexOf('"', close + 1)
  }
  return -1
}

const isDigit = (c: number) => c >= 48 && c <= 57

/**
 * Whether the digits text[from, end) are at most 2^53 − 1, compared as text: Number() of 19 digits takes
 * V8's exact (big number) conversion, a microsecond each.
 */
function isSafeIntegerText(text: string, from: number, end: number): boolean {
  let i = from
  while (i < end && text.charCodeAt(i) === 48) i++
  const length = end - i
  return length < 16 || (length === 16 && text.slice(i, end) <= '9007199254740991')
}

/**
 * The next run of 16 or more digits (strings included) that starts a value and has no fraction or
 * exponent, reading from `i` about one character in 16: a non-digit at i means any such run lies wholly
 * past i. `start` includes the minus sign, `digits` is the first digit. Most texts hold none (a CloudTrail
 * record's long digit runs sit inside strings, after a `-` in a session name).
 */
function bigRunFrom(text: string, from: number): { start: number; digits: number; end: number } | undefined {
  let i = from
  while (i < text.length) {
    if (!isDigit(text.charCodeAt(i))) {
      i += 16
      continue
    }
    let start = i
    while (start > 0 && isDigit(text.charCodeAt(start - 1))) start--
    let end = i + 1
    while (end < text.length && isDigit(text.charCodeAt(end))) end++
    if (end - start >= 16) {
      const signed = start > 0 && text.charCodeAt(start - 1) === 45 ? start - 1 : start
      if (startsValue(text, signed) && isWholeInteger(text, end)) return { start: signed, digits: start, end }
    }
    i = end + 16
  }
  return undefined
}

/** The quote that ends the string opened at `open`, or -1 when it is never closed. */
function closingQuote(text: string, open: number): number {
  let q = text.indexOf('"', open + 1)
  while (q !== -1 && text.charCodeAt(q - 1) === 92 && isEscaped(text, q)) q = text.indexOf('"', q + 1)
  return q
}

const whitespace = /\s/

/** Whether a value can start at `start`: the text starts there, or `:`, `,` or `[` and whitespace precede it. */
function startsValue(text: string, start: number): boolean {
  let i = start - 1
  while (i >= 0 && whitespace.test(text.charAt(i))) i--
  if (i < 0) return true
  const c = text.charCodeAt(i)
  return c === 58 || c === 44 || c === 91
}

/** A quote preceded by an odd number of backslashes is part of the string. */
function isEscaped(text: string, quote: number): boolean {
  let backslashes = 0
  for (let i = quote - 1; i >= 0 && text.charCodeAt(i) === 92; i--) backslashes++
  return backslashes % 2 === 1
}

/** An integer token: not followed by a fraction or an exponent. */
function isWholeInteger(text: string, end: number): boolean {
  const after = text.charCodeAt(end)
  return after !== 46 && after !== 101 && after !== 69
}

function tryParse(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: parseJson(text) }
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

function item(index: number, value: unknown, original: () => string, maxDepth: number | undefined): JsonItem {
  if (maxDepth === undefined) return { index, value, original }
  const depth = depthOf(value, maxDepth)
  if (depth > maxDepth) return { index, error: `nested deeper than ${maxDepth} levels`, original }
  return { index, value, original }
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

/** Depth of nested arrays/objects (a scalar is 0), counting stops once past `limit`. */
function depthOf(value: unknown, limit: number): number {
  if (typeof value !== 'object' || value === null) return 0
  let max = 0
  const nodes: object[] = [value]
  const depths: number[] = [1]
  while (nodes.length > 0) {
    const node = nodes.pop() as Record<string, unknown>
    const depth = depths.pop() as number
    if (depth > max) max = depth
    if (max > limit) return max
    // for…in over a parsed object sees exactly its own keys; no array of values is built per node.
    for (const key in node) {
      const child = node[key]
      if (typeof child === 'object' && child !== null) {
        nodes.push(child)
        depths.push(depth + 1)
      }
    }
  }
  return max
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

const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9

function firstNonSpace(text: string, from = 0): number {
  for (let i = from; i < text.length; i++) if (!isSpace(text.charCodeAt(i))) return i
  return -1
}

function lastNonSpace(text: string, before: number): number {
  let i = before - 1
  while (i >= 0 && isSpace(text.charCodeAt(i))) i--
  return i
}

const tooMany = (count: number, max: number) =>
  new NerveError(
    'PAYLOAD_TOO_LARGE',
    `The body holds ${count} items; at most ${max} are accepted per request.`,
  )
