// An S3 object read by `nerve replay`: gunzipped in chunks of gunzipChunkBytes when it is gzip, and a
// connection lost mid-object is an error of the stream, not a gunzip left waiting; nor is a stalled
// endpoint (against the loopback stand-in): past its wait budget the read fails, naming the object.
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import type { S3Client } from '@aws-sdk/client-s3'
import { describe, expect, it } from 'vitest'
import { gunzipChunkBytes } from '../../../ingest/read-replay-files.ts'
import { createAwsClients } from '../../../ingest/s3-client.ts'
import { listReplayObjects, openS3Object } from '../../../ingest/s3-replay-objects.ts'
import { startAwsStandIn } from '../../helpers/aws-stand-in.ts'
import { logFile, prefix, stratus } from './s3-sqs-harness.ts'

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

  it('fails, naming the object, when S3 stalls mid-body or never answers, instead of waiting for good', async () => {
    const standIn = await startAwsStandIn()
    const aws = createAwsClients({
      env: { AWS_ENDPOINT_URL_S3: standIn.url },
      region: 'us-east-2',
      credentials: {
        accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
        secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      },
      maxAttempts: 1,
    })
    try {
      const gz = logFile(stratus.slice(0, 20))
      const midBody = `${prefix}/123456789012_CloudTrail_us-east-2_20240730T2130Z_midbody.json.gz`
      const silent = `${prefix}/123456789012_CloudTrail_us-east-2_20240730T2135Z_silent.json.gz`
      standIn.putObject('acme-org-trail', midBody, gz, { stall: Math.floor(gz.length / 2) })
      standIn.putObject('acme-org-trail', silent, gz, { stall: 'request' })
      const listed = await listReplayObjects(aws.s3, `s3://acme-org-trail/${prefix}/`, {})
      expect(listed.map((o) => o.path)).toEqual([
        `s3://acme-org-trail/${midBody}`,
        `s3://acme-org-trail/${silent}`,
      ])
      for (const { path } of listed) {
        const read = async () => {
          for await (const _ of await openS3Object(aws.s3, path, 500));
        }
        await expect(read()).rejects.toMatchObject({
          code: 'SINK_UNAVAILABLE',
          message: expect.stringContaining(`${path}: S3 did not send it whole within 500 ms`),
        })
      }
    } finally {
      aws.close()
      await standIn.close()
    }
  })
})
