// An S3 object read by `nerve replay`: gunzipped in chunks of gunzipChunkBytes when it is gzip, and a
// connection lost mid-object is an error of the stream, not a gunzip left waiting.
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import type { S3Client } from '@aws-sdk/client-s3'
import { describe, expect, it } from 'vitest'
import { gunzipChunkBytes } from '../../../ingest/read-replay-files.ts'
import { openS3Object } from '../../../ingest/s3-replay-objects.ts'

/** A client whose GetObject answers with `body`. */
const clientWith = (body: () => Readable) => ({ send: async () => ({ Body: body() }) }) as unknown as S3Client

describe('openS3Object', () => {
  it('gunzips a gzipped object in chunks of gunzipChunkBytes', async () => {
    const bytes = randomBytes(1 << 20)
    const gz = gzipSync(bytes)
    const s3 = clientWith(() => Readable.from([gz.subarray(0, 1000), gz.subarray(1000)]))
    const sizes: number[] = []
    const chunks: Buffer[] = []
    for await (const chunk of await openS3Object(s3, 's3://bucket/trail/a.json.gz')) {
      sizes.push((chunk as Buffer).length)
      chunks.push(chunk as Buffer)
    }
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true)
    expect(Math.max(...sizes)).toBe(gunzipChunkBytes)
  })

  it('fails the read when the connection is lost mid-object', async () => {
    const gz = gzipSync(randomBytes(1 << 20))
    const s3 = clientWith(() =>
      Readable.from(
        (async function* () {
          yield gz.subarray(0, 4096)
          throw new Error('socket hang up')
        })(),
      ),
    )
    const read = async () => {
      for await (const _ of await openS3Object(s3, 's3://bucket/trail/a.json.gz'));
    }
    await expect(read()).rejects.toThrow('socket hang up')
  })
})
