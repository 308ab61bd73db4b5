// Reading JSON text: the exact parse (integers beyond 2^53, Falco's 19-digit `evt.time`, are kept as their
// decimal strings instead of being rounded), the end of a string, JSON whitespace, the depth of a value,
// the item limit.
import { NerveError } from '../runtime/errors.ts'

/** JSON.parse that keeps unsafe integers as strings. */
export function parseJson(text: string): unknown {
  return parseJsonText(text).value
}

/**
 * parseJson, and the text JSON.parse read to make the value: `text` itself, or `text` with its unsafe
 * integers quoted. JSON.parse of `read` gives `value` again (the bus writes an event's `raw` as that text).
 */
export function parseJsonText(text: string): { value: unknown; read: string } {
  const quoted = quoteBigRuns(text)
  if (quoted === text) return { value: JSON.parse(text), read: text }
  // Quoting a run that sits inside a string ends that string just before a digit or `-` (a run starts
  // after `:`, `,`, `[` or whitespace, never after a backslash): never valid JSON. So when the text with
  // every run quoted parses, no run was inside a string, and this is the exact parse. Otherwise (broken
  // JSON, or a string holding `:` and 16 digits) the strings are stepped over to quote only real integers.
  try {
    return { value: JSON.parse(quoted), read: quoted }
  } catch {
    const exact = bigIntegersAsStrings(text)
    return { value: JSON.parse(exact), read: exact }
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
 * exponent. `from` is where the 16th digit of the first run looked for may sit. The text is read about
 * one character in 16: a non-digit at i means no such run covers i, so the next may end at i + 16 at the
 * earliest; a digit is followed back only as far as a run of 16 ending there could start, and the first
 * non-digit found (short digit runs are common: account ids, IP addresses, dates) moves the next
 * candidate end past it. `start` includes the minus sign, `digits` is the first digit. Most texts hold
 * none (a CloudTrail record's long digit runs sit inside strings, after a `-` in a session name).
 */
function bigRunFrom(text: string, from: number): { start: number; digits: number; end: number } | undefined {
  const length = text.length
  let i = from
  while (i < length) {
    if (!isDigit(text.charCodeAt(i))) {
      i += 16
      continue
    }
    // i ≥ 15: every candidate end is at least 15 past the start of the text or of the previous run.
    const earliest = i - 15
    let j = i - 1
    while (j >= earliest && isDigit(text.charCodeAt(j))) j--
    if (j >= earliest) {
      i = j + 16
      continue
    }
    let start = earliest
    while (start > 0 && isDigit(text.charCodeAt(start - 1))) start--
    let end = i + 1
    while (end < length && isDigit(text.charCodeAt(end))) end++
    const signed = start > 0 && text.charCodeAt(start - 1) === 45 ? start - 1 : start
    if (startsValue(text, signed) && isWholeInteger(text, end)) return { start: signed, digits: start, end }
    i = end + 16
  }
  return undefined
}

/** The quote that ends the string opened at `open`, or -1 when it is never closed. */
export function closingQuote(text: string, open: number): number {
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

/**
 * Whether an object in `text` names a key twice: JSON.parse keeps the last copy, silently, where another
 * reader (IAM, a person reading the text) may take the first. `value` is `text` parsed. In valid JSON every
 * `:` outside strings separates a member's key from its value, so the text had more members than `value`
 * has keys exactly when a key came twice.
 */
export function hasDuplicateKeys(text: string, value: unknown): boolean {
  let members = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) i = closingQuote(text, i)
    else if (c === 58) members++
    if (i === -1) return false
  }
  return members !== keyCount(value)
}

/** Keys of every object inside `value`, walked without recursion (it may nest deeper than the stack). */
function keyCount(value: unknown): number {
  let keys = 0
  const nodes: unknown[] = [value]
  while (nodes.length > 0) {
    const node = nodes.pop()
    if (typeof node !== 'object' || node === null) continue
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) nodes.push(node[i])
      continue
    }
    for (const key in node) {
      keys++
      nodes.push((node as Record<string, unknown>)[key])
    }
  }
  return keys
}

/** Depth of nested arrays/objects (a scalar is 0), counting stops once past `limit`. */
export function depthOf(value: unknown, limit: number): number {
  return walkDepth(value, limit, false)
}

/** 2^53: the least magnitude of a number that is not a safe integer once it is an integer. */
const unsafeMagnitude = 2 ** 53

/**
 * parseJson(text), for a text whose depth is walked anyway (a CloudTrail log file of a thousand records),
 * or undefined when it nests deeper than `limit` (depthOf's count); throws parseJson's error when the text
 * is not JSON. JSON.parse reads the text first and the walk that counts the depth also looks at every
 * number: the big-integer scan (quoteBigRuns, a read of the whole text) runs only when one is 2^53 or
 * more in magnitude. Exact: an integer literal beyond 2^53 − 1 parses to such a number (rounding keeps
 * the order, and 2^53 is a double), so a walk that meets none means the text holds no integer that
 * parseJson would quote, and JSON.parse gave parseJson's value. A fraction or exponent that large
 * (`1e300`) costs the scan, as before.
 */
export function parseJsonWithin(text: string, limit: number): { value: unknown } | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    // The same validity either way: parseJson throws here, with the message it always gave.
    return parseWalked(parseJson(text), limit)
  }
  const walk = walkDepth(value, limit, true)
  if (walk > limit) return undefined
  if (walk >= 0) return { value }
  value = undefined // not held while the text is parsed again
  return parseWalked(parseJson(text), limit)
}

const parseWalked = (value: unknown, limit: number) => (depthOf(value, limit) > limit ? undefined : { value })

/**
 * depthOf, and with `numbers`, -1 as soon as a number of 2^53 or more in magnitude is met (while the depth
 * is within `limit`: a value deeper is refused whatever it holds).
 */
function walkDepth(value: unknown, limit: number, numbers: boolean): number {
  if (typeof value !== 'object' || value === null) {
    return numbers && typeof value === 'number' && Math.abs(value) >= unsafeMagnitude ? -1 : 0
  }
  let max = 0
  // Iterative: a parsed value may nest deeper than the stack allows (the limit may be unbounded).
  const nodes: object[] = [value]
  const depths: number[] = [1]
  while (nodes.length > 0) {
    const node = nodes.pop() as object
    const depth = depths.pop() as number
    if (depth > max) max = depth
    if (max > limit) return max
    if (Array.isArray(node)) {
      // By index: for…in over an array makes a string key per element (twice the time of the whole walk).
      for (let i = 0; i < node.length; i++) {
        const child: unknown = node[i]
        if (typeof child === 'object' && child !== null) {
          nodes.push(child)
          depths.push(depth + 1)
        } else if (numbers && typeof child === 'number' && Math.abs(child) >= unsafeMagnitude) return -1
      }
      continue
    }
    // for…in over a parsed object sees exactly its own keys; no array of values is built per node.
    for (const key in node) {
      const child = (node as Record<string, unknown>)[key]
      if (typeof child === 'object' && child !== null) {
        nodes.push(child)
        depths.push(depth + 1)
      } else if (numbers && typeof child === 'number' && Math.abs(child) >= unsafeMagnitude) return -1
    }
  }
  return max
}

export const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9

export function firstNonSpace(text: string, from = 0): number {
  for (let i = from; i < text.length; i++) if (!isSpace(text.charCodeAt(i))) return i
  return -1
}

export function lastNonSpace(text: string, before: number): number {
  let i = before - 1
  while (i >= 0 && isSpace(text.charCodeAt(i))) i--
  return i
}

/** PAYLOAD_TOO_LARGE for a body of `count` items, more than `max`. */
export const tooMany = (count: number, max: number) =>
  new NerveError(
    'PAYLOAD_TOO_LARGE',
    `The body holds ${count} items; at most ${max} are accepted per request.`,
  )
