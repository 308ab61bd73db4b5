// Why a text is not JSON, and where: the first syntax error as JSON.parse would name it ("Expected ',' or
// '}' after property value in JSON at position 37"), found reading the text a part at a time so that a
// caller can give the event loop back between parts. A 64 MiB body that is not JSON was parsed whole only
// to say why (up to the error: the whole body when it is broken at its end). The grammar is RFC 8259's, as
// JSON.parse reads it; the reasons are V8's, with the position added where V8 gives none. Pure.

export type JsonSyntaxError = { position: number; reason: string }

/** The error's sentence, as V8's: "Bad escaped character in JSON at position 7". */
export const describeJsonError = ({ reason, position }: JsonSyntaxError): string =>
  `${reason}${reason.includes('JSON') ? '' : ' in JSON'} at position ${position}`

/** findJsonError run to its end at once: for a text small enough to read in one go. */
export function jsonSyntaxError(text: string): JsonSyntaxError | undefined {
  const steps = findJsonError(text, Number.POSITIVE_INFINITY)
  let step = steps.next()
  while (!step.done) step = steps.next()
  return step.value
}

enum C {
  Tab = 9,
  Newline = 10,
  Return = 13,
  Space = 32,
  Quote = 34,
  Plus = 43,
  Comma = 44,
  Minus = 45,
  Dot = 46,
  Zero = 48,
  Nine = 57,
  Colon = 58,
  OpenArray = 91,
  Backslash = 92,
  CloseArray = 93,
  OpenObject = 123,
  CloseObject = 125,
}

const isDigit = (c: number) => c >= C.Zero && c <= C.Nine
const isHex = (c: number) => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)
const isSpace = (c: number) => c === C.Space || c === C.Newline || c === C.Return || c === C.Tab
/** `"b/fnrt\` after a backslash. */
const isEscape = (c: number) =>
  c === C.Quote ||
  c === C.Backslash ||
  c === 47 ||
  c === 98 ||
  c === 102 ||
  c === 110 ||
  c === 114 ||
  c === 116

/** A character as the error shows it: printable ASCII quoted, anything else (a control) as U+XXXX. */
const shown = (c: number) =>
  c > 32 && c < 127 ? `'${String.fromCharCode(c)}'` : `U+${c.toString(16).toUpperCase().padStart(4, '0')}`

/** Up to 4096 characters that stand for themselves in a string (no quote, backslash or control). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the controls a JSON string may not hold raw.
const plainRun = /[^"\\\u0000-\u001f]{0,4096}/y

/** Gives the loop back once; the end of the next part read from `at`. */
function* nextPart(at: number, partChars: number): Generator<void, number, undefined> {
  yield
  return at + partChars
}

/**
 * The first syntax error of `text`, or undefined when it is one JSON value (with whitespace around it);
 * yields about every `partChars` characters read, inside a run of whitespace, digits or string too. One
 * generator with its loops inline (no generator per value: a body of a million tiny values would make a
 * million). Nesting is kept one bit per level: a body of brackets only costs an eighth of its length.
 */
export function* findJsonError(
  text: string,
  partChars: number,
): Generator<void, JsonSyntaxError | undefined, undefined> {
  const n = text.length
  const fail = (position: number, reason: string): JsonSyntaxError => ({ position, reason })
  // Where a value or a word's next letter should be: what is there instead, as V8 names it.
  const unexpected = (at: number): JsonSyntaxError => {
    if (at >= n) return fail(n, 'Unexpected end of JSON input')
    const c = text.charCodeAt(at)
    if (c === C.Minus || isDigit(c)) return fail(at, 'Unexpected number')
    return fail(at, c === C.Quote ? 'Unexpected string' : `Unexpected token ${shown(c)}`)
  }
  // Open containers, innermost last: the bit set for an object.
  let objects = new Uint8Array(64)
  let depth = 0
  let budget = partChars
  let i = 0
  /** The value about to be read is a member's key (its quote already seen). */
  let key = false

  for (;;) {
    // One value from i: a container's opening, a string (a key among them), a number or a word.
    while (isSpace(text.charCodeAt(i))) if (++i >= budget) budget = yield* nextPart(i, partChars)
    const c = text.charCodeAt(i)
    if (c === C.OpenObject || c === C.OpenArray) {
      if (depth >> 3 >= objects.length) {
        const grown = new Uint8Array(objects.length * 2)
        grown.set(objects)
        objects = grown
      }
      const bit = 1 << (depth & 7)
      const byte = objects[depth >> 3] as number
      objects[depth >> 3] = c === C.OpenObject ? byte | bit : byte & ~bit
      depth++
      if (++i >= budget) budget = yield* nextPart(i, partChars)
      while (isSpace(text.charCodeAt(i))) if (++i >= budget) budget = yield* nextPart(i, partChars)
      const next = text.charCodeAt(i)
      if (next !== (c === C.OpenObject ? C.CloseObject : C.CloseArray)) {
        if (c === C.OpenArray) continue
        if (next !== C.Quote) return fail(i, "Expected property name or '}'")
        key = true
        continue
      }
      depth--
      i++
    } else if (c === C.Quote) {
      for (i++; ; ) {
        // The plain characters native (a record's base64 is one long run of them), a bounded run at a time.
        plainRun.lastIndex = i
        plainRun.test(text)
        i = plainRun.lastIndex
        if (i >= budget) budget = yield* nextPart(i, partChars)
        if (i >= n) return fail(n, 'Unterminated string')
        const s = text.charCodeAt(i)
        if (s === C.Quote) break
        if (s < 32) return fail(i, 'Bad control character in string literal')
        if (s === C.Backslash) {
          const e = text.charCodeAt(++i)
          if (i >= n) return unexpected(n)
          if (e === 117) {
            for (let k = 1; k <= 4; k++)
              if (!isHex(text.charCodeAt(i + k))) return fail(Math.min(i + k, n), 'Bad Unicode escape')
            i += 4
          } else if (!isEscape(e)) return fail(i, 'Bad escaped character')
        }
        if (++i >= budget) budget = yield* nextPart(i, partChars)
      }
      i++
      if (key) {
        key = false
        while (isSpace(text.charCodeAt(i))) if (++i >= budget) budget = yield* nextPart(i, partChars)
        if (text.charCodeAt(i) !== C.Colon) return fail(i, "Expected ':' after property name")
        i++
        continue
      }
    } else if (c === C.Minus || isDigit(c)) {
      // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
      if (c === C.Minus && !isDigit(text.charCodeAt(++i))) return fail(i, 'No number after minus sign')
      if (text.charCodeAt(i) === C.Zero) {
        if (isDigit(text.charCodeAt(++i))) return fail(i, 'Unexpected number')
      } else while (isDigit(text.charCodeAt(i))) if (++i >= budget) budget = yield* nextPart(i, partChars)
      if (text.charCodeAt(i) === C.Dot) {
        if (!isDigit(text.charCodeAt(++i))) return fail(i, 'Unterminated fractional number')
        while (isDigit(text.charCodeAt(i))) if (++i >= budget) budget = yield* nextPart(i, partChars)
      }
      const e = text.charCodeAt(i)
      if (e === 101 || e === 69) {
        const sign = text.charCodeAt(++i)
        if (sign === C.Plus || sign === C.Minus) i++
        if (!isDigit(text.charCodeAt(i))) return fail(i, 'Exponent part is missing a number')
        while (isDigit(text.charCodeAt(i))) if (++i >= budget) budget = yield* nextPart(i, partChars)
      }
    } else {
      const word = c === 116 ? 'true' : c === 102 ? 'false' : c === 110 ? 'null' : ''
      if (word === '') return unexpected(i)
      for (let k = 1; k < word.length; k++)
        if (text.charCodeAt(i + k) !== word.charCodeAt(k)) return unexpected(i + k)
      i += word.length
    }
    // After a value: close what it ends, until a comma asks for the next value (or the text ends).
    for (;;) {
      while (isSpace(text.charCodeAt(i))) if (++i >= budget) budget = yield* nextPart(i, partChars)
      if (depth === 0) return i < n ? fail(i, 'Unexpected non-whitespace character after JSON') : undefined
      const object = ((objects[(depth - 1) >> 3] as number) & (1 << ((depth - 1) & 7))) !== 0
      const next = text.charCodeAt(i)
      if (next === (object ? C.CloseObject : C.CloseArray)) {
        depth--
        if (++i >= budget) budget = yield* nextPart(i, partChars)
        continue
      }
      if (next !== C.Comma) {
        return fail(
          i,
          object ? "Expected ',' or '}' after property value" : "Expected ',' or ']' after array element",
        )
      }
      i++
      if (object) {
        while (isSpace(text.charCodeAt(i))) if (++i >= budget) budget = yield* nextPart(i, partChars)
        if (text.charCodeAt(i) !== C.Quote) return fail(i, 'Expected double-quoted property name')
        key = true
      }
      break
    }
  }
}
