import { describe, expect, it } from 'vitest'
import { describeJsonError, findJsonError, jsonSyntaxError } from '../../../ingest/find-json-error.ts'
import { fixture } from './ingest-harness.ts'

const samples = [
  fixture('cloudtrail/envelopes/firehose-http-request-cwl-cloudtrail.json').toString(),
  fixture('falco/falco-website.ndjson').toString().split('\n')[0] as string,
  '[{"k":"v"}, 0, -0.1, 1E5, -2.5e+3, true, false, null, "\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9", {}, []]',
]

/** JSON.parse's message, or undefined when the text parses. */
function parseError(text: string): string | undefined {
  try {
    JSON.parse(text)
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}

describe('findJsonError', () => {
  it('finds the error JSON.parse finds, at the same position, in texts broken one character at a time', () => {
    const insert = ' ,:{}[]"\\0123456789-+.eEtfnulx\u0001\u009b\n'
    let seed = 7
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff
      return seed % n
    }
    for (let round = 0; round < 1200; round++) {
      const base = samples[round % samples.length] as string
      const at = random(base.length + 1)
      const text = [
        base.slice(0, at),
        base.slice(0, at) + base.slice(at + 1),
        base.slice(0, at) + insert[random(insert.length)] + base.slice(at),
      ][round % 3] as string
      const want = parseError(text)
      const got = jsonSyntaxError(text)
      if (want === undefined) {
        expect(got, text).toBeUndefined()
        continue
      }
      expect(got, text).toBeDefined()
      const position = /at position (\d+)$/.exec(want)?.[1]
      // Where V8 names a position, the same one; V8 names the one below "Unexpected token" after a key.
      if (position !== undefined) expect(got?.position, `${text}: ${want}`).toBe(Number(position))
      if (position !== undefined && !got?.reason.startsWith("Expected ':'"))
        expect(describeJsonError(got as NonNullable<typeof got>)).toBe(want)
    }
  })

  it('names the position where JSON.parse names none', () => {
    for (const [text, message] of [
      ['', 'Unexpected end of JSON input at position 0'],
      ['[1,', 'Unexpected end of JSON input at position 3'],
      ['{"a":tru}', "Unexpected token '}' in JSON at position 8"],
      ['[1,]', "Unexpected token ']' in JSON at position 3"],
      ['["\u009b", x]', "Unexpected token 'x' in JSON at position 6"],
      ['[\u202e]', 'Unexpected token U+202E in JSON at position 1'],
    ]) {
      const error = jsonSyntaxError(text as string)
      expect(error && describeJsonError(error)).toBe(message)
    }
  })

  it('reads a large text in parts, and deep nesting without recursion', () => {
    const deep = `${'['.repeat(200_000)}1${']'.repeat(199_999)}`
    const steps = findJsonError(deep, 64 * 1024)
    let parts = 0
    let step = steps.next()
    while (!step.done) {
      parts++
      step = steps.next()
    }
    expect(step.value).toEqual({ position: 400_000, reason: "Expected ',' or ']' after array element" })
    expect(parts).toBe(Math.floor(deep.length / (64 * 1024)))
    expect(jsonSyntaxError(`{"a":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_001)}`)).toBeUndefined()
    // A string of one part and more is read in parts too.
    const long = `["${'x'.repeat(300_000)}\\q"]`
    let stringParts = 0
    const inString = findJsonError(long, 64 * 1024)
    let s = inString.next()
    while (!s.done) {
      stringParts++
      s = inString.next()
    }
    expect(stringParts).toBe(4)
    expect(s.value).toEqual({ position: 300_003, reason: 'Bad escaped character' })
  })
})
