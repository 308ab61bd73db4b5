// Text that came from an input (a file name, an S3 key, a JSON key, an error quoting them), written by the
// CLI or the logs to a terminal: its control characters are shown as escapes, so a crafted name cannot move
// the cursor, erase the screen, set the window title, reorder what follows or hide itself (C0 and C1
// controls, DEL, the bidirectional marks, embeddings, overrides and isolates, the zero-width and other
// invisible characters, the line and paragraph separators: the console's set). Pure.

/** `\x1b` for a control below U+0100, `\u202e` for the others. */
const escaped = (code: number) =>
  code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`

const isControl = (code: number) =>
  code < 0x20 ||
  (code >= 0x7f && code <= 0x9f) ||
  code === 0x061c ||
  (code >= 0x200b && code <= 0x200f) ||
  (code >= 0x2028 && code <= 0x202e) ||
  (code >= 0x2060 && code <= 0x2069) ||
  code === 0xfeff

/** The same set but the C0 controls, which JSON escapes itself (sinks/console/console.js's set). */
const unescapedByJson = /[\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/

function shown(text: string, keepNewlines: boolean): string {
  let out = ''
  let from = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (!isControl(code) || (keepNewlines && code === 0x0a)) continue
    out += text.slice(from, i) + escaped(code)
    from = i + 1
  }
  return from === 0 ? text : out + text.slice(from)
}

/** One line of the terminal: every control character escaped, line breaks too. */
export const terminalLine = (text: string): string => shown(text, false)

/** A message that may span lines (a config error lists its problems one a line): line breaks kept. */
export const terminalText = (text: string): string => shown(text, true)

const unescapedByJsonAll = new RegExp(unescapedByJson.source, 'g')

/**
 * JSON text (a log line) with the characters JSON.stringify and pino write as they are (DEL, C1 controls,
 * the bidirectional and invisible ones) escaped. Those can only stand inside strings, where a `\u` escape
 * is the same character: the text parses to the same value. Text without any is returned as it is.
 */
export function terminalJsonText(json: string): string {
  // ASCII without DEL (every log line but a few): a native count of its UTF-8 bytes and a search for DEL
  // settle it about six times faster than the regex (about 0.2 µs for a 300-character line, against 1.3).
  if (Buffer.byteLength(json) === json.length && !json.includes('\u007f')) return json
  if (!unescapedByJson.test(json)) return json
  return json.replace(unescapedByJsonAll, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** `value` as one line of JSON for a terminal (`nerve dead-letters`). */
export const terminalJson = (value: unknown): string => terminalJsonText(JSON.stringify(value))
