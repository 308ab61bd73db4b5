import { describe, expect, it } from 'vitest'
import { terminalJson, terminalLine, terminalText } from '../../../runtime/terminal-text.ts'

describe('text from an input, shown on a terminal', () => {
  it('escapes control characters, so a crafted file name cannot drive the terminal', () => {
    // Set the window title, erase the screen, a C1 CSI, DEL, a right-to-left override.
    const name = '/trail/x\u001b]0;pwned\u0007\u001b[2J\u009b31m\u007f\u202egz.json'
    expect(terminalLine(name)).toBe('/trail/x\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\x7f\\u202egz.json')
    expect(terminalLine('a\r\nb\tc')).toBe('a\\x0d\\x0ab\\x09c')
    expect(terminalText('rules are invalid:\n  a\rb')).toBe('rules are invalid:\n  a\\x0db')
  })

  it('leaves ordinary text as it is', () => {
    const text = '/data/123456789012_CloudTrail_us-west-2_20210410T1930Z_é–ü.json.gz: not valid gzip data.'
    expect(terminalLine(text)).toBe(text)
    expect(terminalText(text)).toBe(text)
  })

  it('writes JSON whose strings hold DEL, C1 controls or bidi overrides with those escaped, the same value', () => {
    // A dead letter's original bytes are the watched agent's: `nerve dead-letters` prints them as JSON.
    const item = { original: 'ok\u009b2J\u007f\u202eevil\u2066', reason: 'é\u001b' }
    const line = terminalJson(item)
    expect(line).toBe('{"original":"ok\\u009b2J\\u007f\\u202eevil\\u2066","reason":"é\\u001b"}')
    expect(JSON.parse(line)).toEqual(item)
  })
})
