// Text that came from an input (a file name, an S3 key, a JSON key, an error quoting them), written by the
// CLI to a terminal: its control characters are shown as escapes, so a crafted name cannot move the
// cursor, erase the screen, set the window title or reorder what follows (C0 and C1 controls, DEL, and the
// bidirectional overrides and isolates). Pure.

/** `\x1b` for a control below U+0100, `\u202e` for the others. */
const escaped = (code: number) =>
  code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`

const isControl = (code: number) =>
  code < 0x20 ||
  (code >= 0x7f && code <= 0x9f) ||
  (code >= 0x202a && code <= 0x202e) ||
  (code >= 0x2066 && code <= 0x2069)

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

/**
 * `value` as one line of JSON for a terminal (`nerve dead-letters`): JSON.stringify escapes C0 controls but
 * writes DEL, C1 controls and the bidirectional overrides as they are. Those can only stand inside strings,
 * where a `\u` escape is the same character: the line parses to the same value.
 */
export const terminalJson = (value: unknown): string =>
  JSON.stringify(value).replace(
    /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
