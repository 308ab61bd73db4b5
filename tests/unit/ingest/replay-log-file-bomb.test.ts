import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { decodeReplayFile } from '../../../ingest/decode-replay-file.ts'
import { readReplayParts } from '../../../ingest/read-replay-files.ts'
import { eventKind, type SortKey } from '../../../ingest/sorted-run-records.ts'
import type { RunWriter } from '../../../ingest/sorted-runs.ts'
import { largeLineChars } from '../../../ingest/split-large-log-file.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { fixtures } from './ingest-harness.ts'

const empties = 20_000
const realRecord = readFileSync(
  join(fixtures, 'cloudtrail/aws-samples-eks-pod-identity.ndjson'),
  'utf8',
).split('\n')[0] as string

/** A gzipped log file of `empties` empty records, then a real one: what whoever writes the bucket can drop. */
function bombFile(): string {
  const file = join(tempDir('nerve-replay-bomb'), 'bomb.json.gz')
  writeFileSync(file, gzipSync(`{"Records":[${'{},'.repeat(empties)}${realRecord}]}\n`))
  return file
}

const recordsIn = (value: unknown) => (value as { Records?: unknown[] }).Records?.length ?? 1

/** The most records any part of the file holds, and the records of all its parts. */
async function partSizes(file: string): Promise<{ largest: number; records: number }> {
  let largest = 0
  let records = 0
  for await (const part of readReplayParts([file], { maxDepth: 64 })) {
    const held = part.items.reduce((sum, item) => sum + recordsIn(item.value), 0)
    largest = Math.max(largest, held)
    records += held
  }
  return { largest, records }
}

/** Real records, repeated until they fill a line of at least `chars` characters. */
function realRecords(chars: number): string[] {
  const lines = readFileSync(join(fixtures, 'cloudtrail/stratus-red-team-detonation-logs.ndjson'), 'utf8')
    .trim()
    .split('\n')
  const records: string[] = []
  for (let length = 0; length < chars; length += (records.at(-1) as string).length + 1)
    records.push(lines[records.length % lines.length] as string)
  return records
}

describe('replay of a log file of many empty records', () => {
  it('reads its records a part at a time, numbered where they stood in the file', async () => {
    const largest: number[] = []
    let records = 0
    for await (const part of readReplayParts([bombFile()], { maxDepth: 64 })) {
      const held = part.items.reduce((sum, item) => sum + recordsIn(item.value), 0)
      largest.push(held)
      records += held
    }
    expect(records).toBe(empties + 1)
    expect(Math.max(...largest)).toBeLessThanOrEqual(250)
  })

  it('reads a log file wrapped in an array, on a line of 4 MiB or more, a part at a time too', async () => {
    const records = realRecords(largeLineChars)
    const dir = tempDir('nerve-replay-bomb')
    for (const [name, line] of [
      ['bare.json', `{"Records":[${records.join(',')}]}`],
      [
        'wrapped.json',
        `[{"Records":[${records.join(',')}]}, {"Records":[${records.slice(0, 300).join(',')}]}]`,
      ],
    ] as const) {
      writeFileSync(join(dir, name), `${line}\n`)
      const read = await partSizes(join(dir, name))
      expect(read.records, name).toBe(records.length + (name === 'wrapped.json' ? 300 : 0))
      expect(read.largest, name).toBeLessThanOrEqual(250)
    }
  })

  it('counts each empty record as invalid, at its place in the file, and decodes the real record after them', async () => {
    const added: { key: SortKey; kind: number }[] = []
    const runs = {
      add: (key: SortKey, kind: number) => added.push({ key, kind }),
      begin() {},
      commit() {},
      discard() {},
    } as unknown as RunWriter
    const normalized: number[] = []
    const done = await decodeReplayFile(
      bombFile(),
      { agents: [], revoke: { self_identities: [] }, maxDepth: 64 },
      { keepRaw: () => false },
      runs,
      { keepInvalid: empties, onPart: (events) => normalized.push(events) },
    )
    expect(done.invalidCount).toBe(empties)
    expect(done.invalid).toHaveLength(empties)
    expect(done.invalid.at(-1)?.problems[0]?.path).toMatch(/^\/Records\/19999(\/|$)/)
    expect(normalized.length).toBeGreaterThanOrEqual(empties / 250)
    expect(added.map((a) => a.kind)).toEqual([eventKind])
  })
})
