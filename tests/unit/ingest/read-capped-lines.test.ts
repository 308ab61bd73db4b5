// A line over the cap is named by its own line number, however the input's chunks fall: within one chunk,
// across several, or pushed over the cap by the piece that ends it.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { type LineTooLong, readCappedLines } from '../../../ingest/read-capped-lines.ts'
import { fixtures } from './ingest-harness.ts'

const alert = readFileSync(join(fixtures, 'falco/falco.ndjson'), 'utf8').split('\n')[0] as string

async function linesOf(input: Buffer, chunkBytes: number, cap: number) {
  const chunks = async function* () {
    for (let at = 0; at < input.length; at += chunkBytes) yield input.subarray(at, at + chunkBytes)
  }
  const out: (string | LineTooLong)[] = []
  for await (const lines of readCappedLines(chunks(), cap)) out.push(...lines)
  return out.map((l) => (typeof l === 'string' ? l.slice(0, 20) : `too long: line ${l.lineNumber}`))
}

describe('readCappedLines', () => {
  const cases = [
    ['well over the cap', 5_000],
    ['just over the cap', 4_097],
  ] as const
  for (const [name, length] of cases) {
    it(`names a line ${name} by its number, in one chunk or many`, async () => {
      const input = Buffer.from(`${alert}\n${'x'.repeat(length)}\n${alert}\n`)
      const expected = [alert.slice(0, 20), 'too long: line 2', alert.slice(0, 20)]
      for (const chunkBytes of [input.length, 1024, 4_000, 7]) {
        expect(await linesOf(input, chunkBytes, 4_096), `chunks of ${chunkBytes}`).toEqual(expected)
      }
    })
  }
})
