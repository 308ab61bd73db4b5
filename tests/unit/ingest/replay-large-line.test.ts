import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { decodeReplayFile } from '../../../ingest/decode-replay-file.ts'
import { readReplayParts } from '../../../ingest/read-replay-files.ts'
import type { RunWriter } from '../../../ingest/sorted-runs.ts'
import { largeLineChars } from '../../../ingest/split-large-log-file.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { seededRandom } from '../../helpers/seeded-random.ts'
import { fixtures } from './ingest-harness.ts'

// A line of 4 MiB or more is read a part at a time (ingest/split-large-log-file.ts); a document spread over
// several lines is parsed whole. Whatever the file holds, both must decode to the same events, rejections
// and skips.

const lines = (path: string) => readFileSync(join(fixtures, path), 'utf8').trim().split('\n')
const real = [
  ...lines('cloudtrail/stratus-red-team-detonation-logs.ndjson'),
  ...lines('cloudtrail/aws-samples-eks-pod-identity.ndjson'),
  ...lines('cloudtrail/panther-analysis-rule-tests.ndjson'),
]
const alerts = lines('replay/falco-alerts.ndjson')
const s3Notification = JSON.stringify(
  JSON.parse(
    readFileSync(join(fixtures, 'cloudtrail/envelopes/s3-event-notification-awsdocs-example.json'), 'utf8'),
  ).Records[0],
)
/** A record whose string holds what a scan for brackets, quotes and `aws:s3` could trip on. */
const trickyString = (record: string) =>
  record.replace('"userAgent":"', '"userAgent":"\\"eventSource\\":\\"aws:s3\\" ]}[{,\\\\\\" \\u005d \\\\')
/** A record with integers past 2^53 (kept as their digits) in its parameters. */
const bigNumbers = (record: string) =>
  record.replace(
    /"requestParameters":\{(\}?)/,
    (_, close: string) =>
      `"requestParameters":{"count":98765432109876543210,"n":9007199254740993${close || ','}`,
  )
// Not a record nested too deep, nor a broken one: the whole file is then one rejection in either form
// (read-replay-files.test.ts), which would leave nothing else to compare.
const odd = ['{}', 'null', '"]"', '[1,[2,{"a":"]"}]]', '12345678901234567890']
/** A record that makes the line 4 MiB long. */
const pad = `{"eventVersion":"1.08","pad":"${'x'.repeat(largeLineChars)}"}`

/** A log file is its records' texts; an element of an array may be a Falco alert instead. */
type Generated = { array: false; records: string[] } | { array: true; elements: (string[] | string)[] }

function generate(next: () => number): Generated {
  const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)] as T
  const logFile = (): string[] => {
    const records: string[] = []
    for (let n = Math.floor(next() * 500); n > 0; n--) {
      const r = next()
      const record = pick(real)
      records.push(
        r < 0.7 ? record : r < 0.8 ? trickyString(record) : r < 0.9 ? bigNumbers(record) : pick(odd),
      )
    }
    if (next() < 0.3) records.splice(Math.floor(next() * (records.length + 1)), 0, s3Notification)
    return records
  }
  if (next() < 0.6) {
    const records = logFile()
    records.splice(Math.floor(next() * (records.length + 1)), 0, pad)
    return { array: false, records }
  }
  const elements: (string[] | string)[] = []
  for (let n = 1 + Math.floor(next() * 3); n > 0; n--) elements.push(next() < 0.8 ? logFile() : pick(alerts))
  const padded = elements.find((e) => Array.isArray(e))
  if (padded === undefined) elements.push([pad])
  else padded.splice(Math.floor(next() * (padded.length + 1)), 0, pad)
  return { array: true, elements }
}

/** The file on one line, with the spaces a writer might leave around its commas. */
function oneLine(file: Generated, next: () => number): string {
  const comma = () => [',', ', ', ' ,'][Math.floor(next() * 3)] as string
  const logFile = (records: string[]) => `{"Records":[${records.join(comma())}]}`
  if (!file.array) return logFile(file.records)
  return `[${file.elements.map((e) => (typeof e === 'string' ? e : logFile(e))).join(comma())}]`
}

/** The same file pretty-printed: one record a line. */
function prettyPrinted(file: Generated): string {
  const logFile = (records: string[], indent: string) =>
    `${indent}{\n${indent}  "Records": [\n${records.map((r) => `${indent}    ${r}`).join(',\n')}\n${indent}  ]\n${indent}}`
  if (!file.array) return logFile(file.records, '')
  return `[\n${file.elements.map((e) => (typeof e === 'string' ? `  ${e}` : logFile(e, '  '))).join(',\n')}\n]`
}

/** What replay decodes from the file: its events' records, its rejections (where, why), its skips. */
async function decoded(file: string) {
  const added: string[] = []
  const runs = {
    add: (_key: unknown, kind: number, text: string) => added.push(`${kind} ${text}`),
    begin() {},
    commit() {},
    discard() {},
  }
  const done = await decodeReplayFile(
    file,
    { agents: [], revoke: { self_identities: [] }, maxDepth: 64 },
    { keepRaw: () => true },
    runs as unknown as RunWriter,
    { keepInvalid: Number.POSITIVE_INFINITY },
  )
  const invalid = done.invalid.map(({ index, problems, reason }) => ({ index, problems, reason }))
  return { added, invalid, invalidCount: done.invalidCount, skipped: done.skipped }
}

/** Writes the file (gzipped, as CloudTrail writes it) and decodes it. */
async function replayed(text: string) {
  const file = join(tempDir('nerve-large-line'), 'file.json.gz')
  writeFileSync(file, gzipSync(`${text}\n`))
  return decoded(file)
}

/** 16 files, the same on every run, each with the spaces of its one-line form. */
const generated = (() => {
  const next = seededRandom(20261207)
  return Array.from({ length: 16 }, (_, n) => {
    const file = generate(next)
    return { name: `file ${n}`, file, line: oneLine(file, next) }
  })
})()
const logFilesOf = (file: Generated) =>
  file.array ? file.elements.filter((e) => Array.isArray(e)) : [file.records]

describe('a line of 4 MiB or more', () => {
  it('is generated holding S3 records, arrays, and log files of more records than a part', () => {
    const many = (records: string[]) => records.length > 250
    expect(
      generated.filter(({ file }) => logFilesOf(file).some((r) => r.includes(s3Notification))),
    ).not.toHaveLength(0)
    expect(
      generated.filter(({ file }) => file.array && logFilesOf(file).some(many)).length,
    ).toBeGreaterThanOrEqual(2)
    expect(generated.filter(({ file }) => !file.array && many(file.records)).length).toBeGreaterThanOrEqual(2)
    for (const { line } of generated) {
      expect(line.length).toBeGreaterThanOrEqual(largeLineChars)
      expect(() => JSON.parse(line)).not.toThrow()
    }
  })

  it.each(generated)('decodes as the same file pretty-printed ($name)', async ({ file, line }) => {
    expect(await replayed(line)).toEqual(await replayed(prettyPrinted(file)))
  })

  it('decodes a log file with members beside Records as the same file pretty-printed, in parts', async () => {
    const records = [pad, ...real.slice(0, 300), '{}', bigNumbers(real[1] as string)]
    const deep = `${'{"a":'.repeat(64)}1${'}'.repeat(64)}`
    const forms = [
      { before: '"x":1,', after: '' },
      { before: '', after: ',"y":{"digestStartTime":"2021-04-10T19:30:00Z","n":98765432109876543210}' },
      { before: '"Records":[{}],"x":[1,"]"],', after: ',"z":null' },
      // Nested too deep: one rejection for the file in either form.
      { before: '', after: `,"y":${deep}` },
    ]
    const dir = tempDir('nerve-large-line')
    for (const { before, after } of forms) {
      const line = `{${before}"Records":[${records.join(',')}]${after}}`
      const pretty = `{\n  ${before}\n  "Records": [\n    ${records.join(',\n    ')}\n  ]${after}\n}`
      const one = await replayed(line)
      expect(one, after).toEqual(await replayed(pretty))
      expect(one, after).toEqual(await replayed(`[${line}]`))
      expect(one.invalidCount, after).toBe(after.includes(deep) ? 1 : 2)
      writeFileSync(join(dir, 'file.json'), `${line}\n`)
      for await (const part of readReplayParts([join(dir, 'file.json')], { maxDepth: 64 }))
        for (const item of part.items)
          expect(Object.keys(item.value ?? {}).length, after).toBeLessThanOrEqual(1)
    }
  })

  it('skips a log file naming an S3 object whole, as a notification, and never holds its records together', async () => {
    const minimal =
      '{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"object":{"key":"k"}}}'
    const records = [pad, ...Array(300).fill(real[0]), ...Array(1000).fill('{}'), minimal]
    const file = { array: false, records } as const
    const one = await replayed(oneLine(file, () => 0))
    expect(one).toEqual(await replayed(prettyPrinted(file)))
    expect(one).toMatchObject({ added: [], invalidCount: 0, skipped: { file_notification: 1 } })

    const dir = tempDir('nerve-large-line')
    for (const line of [oneLine(file, () => 0), `[${oneLine(file, () => 0)}]`]) {
      writeFileSync(join(dir, 'file.json'), `${line}\n`)
      for await (const part of readReplayParts([join(dir, 'file.json')], { maxDepth: 64 }))
        for (const item of part.items)
          expect((item.value as { Records: unknown[] }).Records.length).toBeLessThanOrEqual(250)
    }
  })
})
