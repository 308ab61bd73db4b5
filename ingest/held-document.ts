// A replay file whose first line is no JSON value: one document spread over several lines (pretty-printed
// JSON), or NDJSON whose first lines are broken (cut short, a `-- log rotated --` banner). The watched agent
// writes its own alert text, so a file must not turn into one broken document that hides the good lines
// after its first ones; and a file of many lines must not be held whole to find out which it is.
import { closingQuote, firstNonSpace, lastNonSpace } from './json-text.ts'
import { isObjectLine } from './split-json-items.ts'
import { largeLineChars } from './split-large-log-file.ts'

/**
 * Whether a first line that is no JSON value opens a document spread over the lines after it: its brackets,
 * counted outside strings, leave one open and never close more than they opened, and it does not end inside
 * a string (which holds no newline). Any other such line is a broken NDJSON line, rejected alone.
 */
export function opensDocument(first: string): boolean {
  let depth = 0
  for (let i = 0; i < first.length; i++) {
    const c = first.charCodeAt(i)
    if (c === 34) {
      i = closingQuote(first, i)
      if (i === -1) return false
    } else if (c === 123 || c === 91) depth++
    else if ((c === 125 || c === 93) && --depth < 0) return false
  }
  return depth > 0
}

/**
 * The lines of a file whose first line opens a document, held while they can still be one. In a document
 * spread over lines, a value standing on a line of its own comes after a `[`, `,` or `:` and before a `,`,
 * `]` or `}`: a line that is a JSON object of its own anywhere else (NDJSON's good lines, each followed by
 * the next) shows the file is NDJSON, which a document never shows. Lines past `maxChars` are more than is
 * read as one document, as a line is: they are let go, and only the last is kept to tell NDJSON still.
 */
export class HeldDocument {
  /** The lines held; past `maxChars`, only the last non-blank one (and the one being judged). */
  lines: string[]
  private chars: number
  private passedOver = false
  /** The last non-blank line, not judged until the one after it is read, and the one before it. */
  private last: { line: string; kind: LineKind } | undefined
  private before: string
  private nonBlank = 1
  private secondIsValue = false
  /**
   * Whether the lines held show a list of a document, never NDJSON: a value with a comma before or after it
   * on its line, or a value line that the next goes on from (it starts with `,`, `]` or `}`).
   */
  private listed = false

  constructor(
    first: string,
    private readonly maxChars: number,
  ) {
    this.lines = [first]
    this.chars = first.length
    this.before = first
  }

  /**
   * Holds `line`. `lines`: the lines held are to be read one by one, as NDJSON's are, from now on.
   * `tooLong`: the document went past `maxChars` with this line (said once); its lines are let go.
   */
  add(line: string): 'held' | 'lines' | 'tooLong' {
    if (this.passedOver) this.lines = this.last ? [this.last.line] : []
    this.lines.push(line)
    this.chars += line.length + 1
    if (firstNonSpace(line) !== -1) {
      if (this.last && standsAlone(this.before, this.last.kind, line)) return 'lines'
      this.listed ||= this.last?.kind === 'value' && goesOn(line)
      if (this.last) this.before = this.last.line
      this.last = { line, kind: kindOf(line) }
      if (++this.nonBlank === 2) this.secondIsValue = this.last.kind === 'value'
      this.listed ||= this.last.kind === 'other' && isListedValue(line)
    }
    if (this.passedOver || this.chars <= this.maxChars) return 'held'
    this.passedOver = true
    return 'tooLong'
  }

  /** Whether the lines were let go, past `maxChars`: the document is not read whole. */
  get tooLong(): boolean {
    return this.passedOver
  }

  /**
   * At the end, when the lines held do not parse as one document (or were let go): whether they are NDJSON
   * with broken lines (its only good line last, or second as in NDJSON cut short on its first line) rather
   * than a broken or cut-short document, which is one rejection. A value with a comma before or after it on
   * its line (`{…},`, `, {…}`: a list written a value a line, comma last or first), or a value line followed
   * by one starting with `,`, `]` or `}`, is a document's: NDJSON has none, a line cut short included
   * (Falco writes one value a line, nothing after it, and a cut line starts as it did). Without one, a
   * file cut short after a line that ends in `[`, `,` or `:` and whose last line is a whole object or array
   * reads the same as NDJSON whose only good line is its last: that line is read, as NDJSON's, so that
   * broken lines written before it (the watched agent's alerts cut short) hide no alert.
   */
  brokenIsLines(): boolean {
    const last = this.last
    if (this.listed || last === undefined) return false
    return this.secondIsValue || last.kind === 'value' || standsAlone(this.before, last.kind, undefined)
  }
}

/**
 * `value`: a JSON object or array of its own (NDJSON's line: an alert, a record, an array of them).
 * `opens`: a line too long to parse here (a log file) that opens with `{` or `[`, so a value starts there;
 * it ends there too, or not.
 */
type LineKind = 'value' | 'opens' | 'other'

function kindOf(line: string): LineKind {
  const start = firstNonSpace(line)
  const open = line.charCodeAt(start)
  if (line.length >= largeLineChars) return open === 123 || open === 91 ? 'opens' : 'other'
  return isValueBetween(line, start, lastNonSpace(line, line.length)) ? 'value' : 'other'
}

/** Whether a line is an object or array with a comma before or after it (`{…},`, `, [1]`). */
function isListedValue(line: string): boolean {
  if (line.length >= largeLineChars) return false
  const start = firstNonSpace(line)
  const end = lastNonSpace(line, line.length)
  if (line.charCodeAt(end) === 44) return isValueBetween(line, start, lastNonSpace(line, end))
  return line.charCodeAt(start) === 44 && isValueBetween(line, firstNonSpace(line, start + 1), end)
}

/** Whether `line` from `start` to `end` (inclusive) is one JSON object or array. */
function isValueBetween(line: string, start: number, end: number): boolean {
  // Checked before parsing: most lines of a document are no value, and a failed parse throws.
  const open = line.charCodeAt(start)
  const close = line.charCodeAt(end)
  if (!((open === 123 && close === 125) || (open === 91 && close === 93))) return false
  return isObjectLine(start === 0 && end === line.length - 1 ? line : line.slice(start, end + 1))
}

/** Whether a line goes on from the value line before it in a document: it starts with `,`, `]` or `}`. */
function goesOn(line: string): boolean {
  const c = line.charCodeAt(firstNonSpace(line))
  return c === 44 || c === 93 || c === 125
}

/** Whether a line of `kind` between the non-blank lines `before` and `after` (undefined: the end) can be in no document. */
function standsAlone(before: string, kind: LineKind, after: string | undefined): boolean {
  if (kind === 'other') return false
  const opened = before.charCodeAt(lastNonSpace(before, before.length))
  if (opened !== 91 && opened !== 44 && opened !== 58) return true
  if (kind === 'opens' || after === undefined) return false
  const closed = after.charCodeAt(firstNonSpace(after))
  return closed !== 44 && closed !== 93 && closed !== 125
}
