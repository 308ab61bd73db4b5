// `nerve replay` holds one line of its input at a time, and no more than maxLineBytes of it: a longer
// line (a log file decompressed past the cap, or a file with no newline at all) is refused as a rejected
// item naming the file, the line and the limit, without being read into memory, and the next lines are read.
// The inputs are generated as streams, gzipped, so neither the test nor the file holds the long line.
import { createWriteStream, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { type ReplayPart, readReplayParts } from '../../../ingest/read-replay-files.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { fixtures } from './ingest-harness.ts'

const lines = (path: string) => readFileSync(join(fixtures, path), 'utf8').trim().split('\n')
const falco = lines('falco/falco-website.ndjson')
const cloudtrail = lines('cloudtrail/aws-samples-eks-pod-identity.ndjson')
const mib = 1024 * 1024

/** `{"Records":[…]}` of the fixture's records repeated to at least `bytes`, a chunk at a time. */
async function* logFileLine(bytes: number): AsyncGenerator<Buffer> {
  const record = Buffer.from(`${cloudtrail[0]},`)
  const chunk = Buffer.concat(Array.from({ length: Math.ceil((64 * 1024) / record.length) }, () => record))
  yield Buffer.from('{"Records":[')
  for (let written = 0; written < bytes; written += chunk.length) yield chunk
  yield Buffer.from(`${cloudtrail[0]}]}`)
}

async function writeGzipped(path: string, parts: (string | (() => AsyncGenerator<Buffer>))[]) {
  const source = Readable.from(
    (async function* () {
      for (const part of parts) {
        if (typeof part === 'string') yield Buffer.from(part)
        else yield* part()
      }
    })(),
  )
  await pipeline(source, createGzip({ level: 1 }), createWriteStream(path))
}

async function readAll(paths: string[], maxLineBytes: number): Promise<ReplayPart['items']> {
  const items: ReplayPart['items'] = []
  for await (const part of readReplayParts(paths, { maxDepth: 64, maxLineBytes })) items.push(...part.items)
  return items
}

describe('replay line cap', () => {
  it('refuses a line over the cap, naming file, line and limit, and reads the lines after it', async () => {
    const dir = tempDir('nerve-replay-line-cap')
    const file = join(dir, 'trail.ndjson.gz')
    await writeGzipped(file, [
      `${falco[0]}\n`,
      () => logFileLine(24 * mib),
      `\n${cloudtrail[1]}\r\n`,
      `${falco[1]}\n`,
    ])
    const items = await readAll([file], 4 * mib)
    expect(items.map((i) => i.index)).toEqual([0, 1, 2, 3])
    expect(items.map((i) => i.error === undefined)).toEqual([true, false, true, true])
    expect(items[1]?.error).toBe(
      `${file}: line 2 is longer than 4 MiB (PAYLOAD_TOO_LARGE): skipped without reading it whole.`,
    )
    expect(items[1]?.file).toBe(file)
    expect(items[1]?.original()).toMatch(/^\{"Records":\[\{"eventVersion"/)
    expect(items[1]?.original().length).toBeLessThanOrEqual(200)
    expect((items[2]?.value as { eventID?: string } | undefined)?.eventID).toBe(
      JSON.parse(cloudtrail[1] as string).eventID,
    )
    expect((items[3]?.value as { output?: string } | undefined)?.output).toBe(
      JSON.parse(falco[1] as string).output,
    )
  })

  it('refuses a file of one line with no newline at all, past the cap', async () => {
    const dir = tempDir('nerve-replay-line-cap')
    const file = join(dir, 'no-newline.json.gz')
    await writeGzipped(file, [() => logFileLine(24 * mib)])
    const items = await readAll([file], 4 * mib)
    expect(items).toHaveLength(1)
    expect(items[0]?.error).toBe(
      `${file}: line 1 is longer than 4 MiB (PAYLOAD_TOO_LARGE): skipped without reading it whole.`,
    )
  })
})
