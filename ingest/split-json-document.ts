// One large JSON document (an array of alerts or records, a CloudTrail log file `{"Records":[…]}`) → its
// items, a part at a time, so that a caller can give the event loop back between parts: one JSON.parse of
// a 4 MB document held the loop for tens of milliseconds, and a 64 MiB decompressed log file for most of a
// second. The text is read in parts to find the spans of the array's elements (or of the object's members,
// and of the elements of an array member such as `Records`); each span is parsed on its own. The result is
// what splitJsonItems gives for the same text: the same values (parsed exactly, duplicate keys last-wins,
// `__proto__` an own key), the same originals, the same depth and item limits. A document that is broken,
// or is not an array or object, is left to splitJsonItems (which parses it once, as before, to say why).
import {
  closingQuote,
  depthOf,
  firstNonSpace,
  isSpace,
  lastNonSpace,
  parseJson,
  tooMany,
} from './json-text.ts'
import type { JsonItem, SplitLimits } from './split-json-items.ts'

type Span = [number, number]
/** A member of the top-level object: its key's span, its value's span, and the value's elements when it is an array. */
type Member = { key: Span; value: Span; elements?: Span[] }

/**
 * Yields parts of items; an empty part is only a place to give the loop back. Returns false, having yielded
 * no item, when the text is not one well-formed array or object: the caller splits it the usual way.
 */
export function* splitJsonDocumentInParts(
  text: string,
  limits: SplitLimits,
  partChars: number,
): Generator<JsonItem[], boolean, undefined> {
  const start = firstNonSpace(text)
  const open = start === -1 ? 0 : text.charCodeAt(start)
  if (open !== 91 && open !== 123) return false
  if (open === 91) {
    const array = yield* scanArray(text, start, partChars)
    if (array === undefined || !ended(text, array.close)) return false
    return yield* arrayItems(text, array.elements, limits, partChars)
  }
  const members = yield* scanObject(text, start, partChars)
  if (members === undefined) return false
  const value = yield* assemble(text, members, limits.maxDepth, partChars)
  if (value === undefined) return false
  const original = () => text.trim()
  yield [
    value.depth > limits.maxDepth
      ? { index: 0, error: `nested deeper than ${limits.maxDepth} levels`, original }
      : { index: 0, value: value.object, original },
  ]
  return true
}

/** The elements as items (as splitJsonItems' arrayItems), in parts; false when one does not parse. */
function* arrayItems(
  text: string,
  spans: readonly Span[],
  limits: SplitLimits,
  partChars: number,
): Generator<JsonItem[], boolean, undefined> {
  // Every span parsed before any item is given: a broken one leaves the whole text to splitJsonItems.
  const parsed = yield* parseSpans(text, spans, partChars)
  if (!parsed) return false
  const { values } = parsed
  if (values.length > limits.maxItems) throw tooMany(values.length, limits.maxItems)
  let part: JsonItem[] = []
  let chars = 0
  for (const [index, value] of values.entries()) {
    const [from, to] = spans[index] as Span
    const original = () => text.slice(from, to)
    part.push(
      depthOf(value, limits.maxDepth) > limits.maxDepth
        ? { index, error: `nested deeper than ${limits.maxDepth} levels`, original }
        : { index, value, original },
    )
    chars += to - from
    if (chars >= partChars) {
      yield part
      part = []
      chars = 0
    }
  }
  if (part.length > 0) yield part
  return true
}

/** The top-level object from its members' spans: each value parsed alone, an array member element by element. */
function* assemble(
  text: string,
  members: Member[],
  maxDepth: number,
  partChars: number,
): Generator<JsonItem[], { object: Record<string, unknown>; depth: number } | undefined, undefined> {
  const object: Record<string, unknown> = {}
  let depth = 1
  let chars = 0
  for (const member of members) {
    const key = tryParse(text, member.key)
    if (!key.ok || typeof key.value !== 'string') return undefined
    let value: unknown
    if (member.elements) {
      const parsed = yield* parseSpans(text, member.elements, partChars, maxDepth)
      if (!parsed) return undefined
      value = parsed.values
      depth = Math.max(depth, 2 + parsed.deepest)
    } else {
      const parsed = tryParse(text, member.value)
      if (!parsed.ok) return undefined
      value = parsed.value
      depth = Math.max(depth, 1 + depthOf(value, maxDepth))
      chars += member.value[1] - member.value[0]
      if (chars >= partChars) {
        yield []
        chars = 0
      }
    }
    // As JSON.parse: a later duplicate replaces the value, and `__proto__` is an own key, not the prototype.
    if (key.value === '__proto__') {
      Object.defineProperty(object, key.value, {
        value,
        writable: true,
        enumerable: true,
        configurable: true,
      })
    } else object[key.value] = value
  }
  return { object, depth }
}

/**
 * Each span parsed, giving the loop back about every `partChars` characters; undefined when one is broken.
 * With `maxDepth`, `deepest` is the depth of the deepest value (counting stops past maxDepth), else 0.
 */
function* parseSpans(
  text: string,
  spans: readonly Span[],
  partChars: number,
  maxDepth?: number,
): Generator<JsonItem[], { values: unknown[]; deepest: number } | undefined, undefined> {
  const values: unknown[] = []
  let deepest = 0
  let chars = 0
  for (const span of spans) {
    const parsed = tryParse(text, span)
    if (!parsed.ok) return undefined
    values.push(parsed.value)
    if (maxDepth !== undefined) deepest = Math.max(deepest, depthOf(parsed.value, maxDepth))
    chars += span[1] - span[0]
    if (chars >= partChars) {
      yield []
      chars = 0
    }
  }
  return { values, deepest }
}

function tryParse(text: string, [from, to]: Span): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: parseJson(text.slice(from, to)) }
  } catch {
    return { ok: false }
  }
}

/**
 * The spans of the elements of the array opened at `start` (as splitJsonItems' originals: from the first to
 * the last non-space character) and the position of its `]`, reading about `partChars` characters between
 * yields. Strings are stepped over with indexOf; brackets are counted, not matched (each span is parsed
 * later, which checks it). Undefined when the brackets do not balance or a comma has nothing on one side.
 */
function* scanArray(
  text: string,
  start: number,
  partChars: number,
): Generator<JsonItem[], { elements: Span[]; close: number } | undefined, undefined> {
  const elements: Span[] = []
  let depth = 0
  let elementStart = -1
  let budget = start + partChars
  for (let i = start + 1; i < text.length; i++) {
    if (i >= budget) {
      budget = i + partChars
      yield []
    }
    const c = text.charCodeAt(i)
    if (c === 34) {
      if (elementStart === -1) elementStart = i
      i = closingQuote(text, i)
      if (i === -1) return undefined
    } else if (c === 123 || c === 91) {
      if (elementStart === -1) elementStart = i
      depth++
    } else if ((c === 125 || c === 93) && depth > 0) depth--
    else if (c === 125 || c === 93) {
      if (c === 125) return undefined
      if (elementStart !== -1) elements.push([elementStart, lastNonSpace(text, i) + 1])
      else if (elements.length > 0) return undefined
      return { elements, close: i }
    } else if (c === 44 && depth === 0) {
      if (elementStart === -1) return undefined
      elements.push([elementStart, lastNonSpace(text, i) + 1])
      elementStart = -1
    } else if (elementStart === -1 && !isSpace(c)) elementStart = i
  }
  return undefined
}

/**
 * The members of the top-level object (key and value spans), and the element spans of each member whose
 * value is an array (read by scanArray). Such an array must be followed by `,` or `}` only; any other
 * value's span is parsed later, which checks it.
 */
function* scanObject(
  text: string,
  start: number,
  partChars: number,
): Generator<JsonItem[], Member[] | undefined, undefined> {
  const members: Member[] = []
  let depth = 0
  let key: Span | undefined
  let colon = false
  let valueStart = -1
  let elements: Span[] | undefined
  let afterComma = false
  let budget = start + partChars
  for (let i = start + 1; i < text.length; i++) {
    if (i >= budget) {
      budget = i + partChars
      yield []
    }
    const c = text.charCodeAt(i)
    if (c === 34) {
      const close = closingQuote(text, i)
      if (close === -1) return undefined
      if (depth === 0 && key === undefined) key = [i, close + 1]
      else if (depth === 0 && !colon) return undefined
      else if (depth === 0 && valueStart === -1) valueStart = i
      else if (depth === 0 && elements) return undefined
      i = close
      continue
    }
    if (depth > 0) {
      // Inside a member's object value.
      if (c === 123 || c === 91) depth++
      else if (c === 125 || c === 93) depth--
      continue
    }
    if (isSpace(c)) continue
    if (key === undefined) {
      // `{}` has no member; otherwise a member starts with its key, a string.
      if (c === 125 && members.length === 0 && !afterComma) return ended(text, i) ? members : undefined
      return undefined
    }
    if (!colon) {
      if (c !== 58) return undefined
      colon = true
    } else if (valueStart === -1) {
      valueStart = i
      afterComma = false
      if (c === 91) {
        const array = yield* scanArray(text, i, partChars)
        if (array === undefined) return undefined
        elements = array.elements
        i = array.close
        budget = i + partChars
      } else if (c === 123) depth = 1
    } else if (c === 44 || c === 125) {
      const value: Span = [valueStart, lastNonSpace(text, i) + 1]
      members.push(elements ? { key, value, elements } : { key, value })
      key = undefined
      colon = false
      valueStart = -1
      elements = undefined
      afterComma = c === 44
      if (c === 125) return ended(text, i) ? members : undefined
    } else if (elements) return undefined
    else if (c === 123 || c === 91) depth++
  }
  return undefined
}

/** Whether only whitespace follows position `close` (the document's last bracket). */
function ended(text: string, close: number): boolean {
  return firstNonSpace(text, close + 1) === -1
}
