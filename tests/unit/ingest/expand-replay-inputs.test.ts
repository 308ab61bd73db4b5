import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { expandReplayInputs, globPathRegExp } from '../../../ingest/expand-replay-inputs.ts'
import { tempDir } from '../../helpers/random-names.ts'

/** A trail laid out as CloudTrail writes it to S3, copied to disk. */
function trailTree(): string {
  const root = tempDir()
  const day = (d: string) => join(root, 'AWSLogs/123456789012/CloudTrail/us-east-1/2026/11', d)
  for (const d of ['01', '02']) {
    mkdirSync(day(d), { recursive: true })
    for (const h of ['0000', '0100'])
      writeFileSync(join(day(d), `123456789012_CloudTrail_us-east-1_202611${d}T${h}Z_a1b2.json.gz`), '')
  }
  const digest = join(root, 'AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/11/01')
  mkdirSync(digest, { recursive: true })
  writeFileSync(join(digest, '123456789012_CloudTrail-Digest_us-east-1_trail_20261101T0000Z.json.gz'), '')
  writeFileSync(join(root, 'falco.ndjson'), '')
  writeFileSync(join(root, 'notes.txt'), '')
  writeFileSync(join(root, '.hidden.json'), '')
  return root
}

describe('expandReplayInputs', () => {
  it('walks a directory for event files, leaving out digests, hidden and other files, sorted', () => {
    const root = trailTree()
    const files = expandReplayInputs([root]).map((f) => f.slice(root.length + 1))
    expect(files).toEqual([
      'AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/01/123456789012_CloudTrail_us-east-1_20261101T0000Z_a1b2.json.gz',
      'AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/01/123456789012_CloudTrail_us-east-1_20261101T0100Z_a1b2.json.gz',
      'AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/02/123456789012_CloudTrail_us-east-1_20261102T0000Z_a1b2.json.gz',
      'AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/02/123456789012_CloudTrail_us-east-1_20261102T0100Z_a1b2.json.gz',
      'falco.ndjson',
    ])
  })

  it('matches quoted globs itself, * within a segment and ** across segments, and reads a file once', () => {
    const root = trailTree()
    const oneDay = expandReplayInputs([`${root}/AWSLogs/*/CloudTrail/*/2026/11/02/*.json.gz`])
    expect(oneDay).toHaveLength(2)
    const midnights = expandReplayInputs([
      `${root}/**/*T0000Z_*.json.gz`,
      `${root}/AWSLogs/**/*_20261101T0000Z_*`,
    ])
    expect(midnights).toHaveLength(2)
    for (const file of midnights) expect(file).toMatch(/T0000Z_a1b2\.json\.gz$/)
    const both = expandReplayInputs([join(root, 'falco.ndjson'), root])
    expect(both).toHaveLength(5)
    expect(both[0]).toBe(join(root, 'falco.ndjson'))
  })

  it('follows links to files, not to directories', () => {
    const root = trailTree()
    const picked = tempDir()
    symlinkSync(join(root, 'falco.ndjson'), join(picked, 'falco.ndjson'))
    symlinkSync(root, join(picked, 'loop'))
    expect(expandReplayInputs([picked])).toEqual([join(picked, 'falco.ndjson')])
  })

  it('names an argument that matches nothing', () => {
    const root = trailTree()
    expect(() => expandReplayInputs([`${root}/**/*.parquet`])).toThrow(/names no file to read/)
    expect(() => expandReplayInputs([`${root}/missing.ndjson`])).toThrow(/no such file/)
  })

  it('keeps * and ? inside one segment', () => {
    expect(globPathRegExp('logs/*.gz').test('logs/a/b.gz')).toBe(false)
    expect(globPathRegExp('logs/**/*.gz').test('logs/a/b.gz')).toBe(true)
    expect(globPathRegExp('logs/**/*.gz').test('logs/b.gz')).toBe(true)
    expect(globPathRegExp('logs/?.gz').test('logs/ab.gz')).toBe(false)
  })
})
