// Spans of JSON text found without parsing it whole, for a large line read a part at a time
// (split-large-log-file.ts): where a value ends, an object's member, an array's elements, and a value
// checked as JSON.parse would, a part at a time.
import { closingQuote, depthOf, firstNonSpace, isSpace, lastNonSpace, parseJson } from './json-text.ts'

export type Span = [number, number]

/** An array or object of at least this many characters is checked a part at a time (checkedDepth). */
const partwiseChars = 64 * 1024

/**
 * The depth of the value at `span` (depthOf's: counting stops once past `limit`), checked as JSON.parse
 * would; undefined when it is not one well-formed value. A large array or object is checked a part at a
 * time: its small elements (members) parsed together in runs of at most `partwiseChars` and dropped, a
 * large one checked so in turn, down to `limit`. So a member beside Records holding millions of values
 * (dropped: the decoder reads nothing else of a log file) is never parsed whole. Past `limit` it is parsed
 * whole: too deep, it leaves the file to splitJsonItems, which parses the line whole anyway.
 */
export function checkedDepth(text: string, [from, end]: Span, limit: number): number | undefined {
  const open = text.charCodeAt(from)
  if (end - from < partwiseChars || limit <= 0 || (open !== 91 && open !== 123)) {
    return parsedDepth(text.slice(from, end), limit)
  }
  let depth = 0
  /** Where the run of small elements (members, from their name) not yet checked starts and ends. */
  let run = -1
  let runEnd = -1
  const checkRun = () => {
    if (run === -1) return true
    const inner = parsedDepth(`${text[from]}${text.slice(run, runEnd)}${open === 91 ? ']' : '}'}`, limit)
    run = -1
    if (inner !== undefined) depth = Math.max(depth, inner - 1)
    return inner !== undefined
  }
  /** An element, or a member from its name at `start`, its value at `value`: whether it is well formed. */
  const piece = (start: number, value: Span) => {
    if (value[1] - value[0] >= partwiseChars) {
      const inner = checkRun() ? checkedDepth(text, value, limit - 1) : undefined
      if (inner !== undefined) depth = Math.max(depth, inner)
      return inner !== undefined
    }
    if (run !== -1 && value[1] - run > partwiseChars && !checkRun()) return false
    if (run === -1) run = start
    runEnd = value[1]
    return true
  }
  if (open === 91) {
    for (const span of recordSpans(text, from, (close) => close + 1 === end)) {
      if (span === undefined || !piece(span[0], span)) return undefined
    }
    return checkRun() ? 1 + depth : undefined
  }
  let at = firstNonSpace(text, from + 1)
  if (text.charCodeAt(at) !== 125) {
    for (; ; at = firstNonSpace(text, at + 1)) {
      const member = memberAt(text, at)
      const valueTo = member ? valueEnd(text, member.value) : -1
      if (member === undefined || valueTo === -1 || !piece(at, [member.value, valueTo])) return undefined
      at = firstNonSpace(text, valueTo)
      if (text.charCodeAt(at) !== 44) break
    }
  }
  if (text.charCodeAt(at) !== 125 || at + 1 !== end) return undefined
  return checkRun() ? 1 + depth : undefined
}

function parsedDepth(text: string, limit: number): number | undefined {
  try {
    return depthOf(parseJson(text), limit)
  } catch {
    return undefined
  }
}

/** A member's name and where its value starts, `at` being where its name should; undefined when broken. */
export function memberAt(text: string, at: number): { name: string; value: number } | undefined {
  if (at === -1 || text.charCodeAt(at) !== 34) return undefined
  const close = closingQuote(text, at)
  if (close === -1) return undefined
  const name = tryParse(text, [at, close + 1])
  const colon = firstNonSpace(text, close + 1)
  if (typeof name !== 'string' || colon === -1 || text.charCodeAt(colon) !== 58) return undefined
  const value = firstNonSpace(text, colon + 1)
  return value === -1 ? undefined : { name, value }
}

/**
 * Where the value starting at `from` ends (brackets counted, not matched, strings stepped over: the value
 * is parsed, which checks it), or -1 when it does not.
 */
export function valueEnd(text: string, from: number): number {
  let depth = 0
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      i = closingQuote(text, i)
      if (i === -1) return -1
      if (depth === 0) return i + 1
    } else if (c === 123 || c === 91) depth++
    else if (c === 125 || c === 93) {
      if (depth === 0) return i
      if (--depth === 0) return i + 1
    } else if (depth === 0 && (c === 44 || isSpace(c))) return i
  }
  return depth === 0 ? text.length : -1
}

/**
 * The spans of the elements of the array opened at `open`, one at a time, then undefined when `ended` says
 * no to what follows its `]` (given the position of that `]`), or its commas or brackets do not balance.
 * Brackets are counted, not matched: each span is parsed, which checks it.
 */
export function* recordSpans(
  line: string,
  open: number,
  ended: (close: number) => boolean,
): Generator<Span | undefined> {
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
      if (ended(i)) return
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

export const failed = Symbol('failed')

export function tryParse(line: string, [from, to]: Span): unknown {
  try {
    return parseJson(line.slice(from, to))
  } catch {
    return failed
  }
}
