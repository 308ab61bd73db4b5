// What a receiver does with a body's Content-Encoding. gzip and deflate are decoded (and a gzip body is
// recognized by its bytes without the header, as an S3 log file posted as is); any other coding is a 415
// that names the two it takes. Before: only br, zstd and compress were refused, and `snappy`, `aes128gcm`
// or `x-foo` bodies were read as plain text; the 415 said "use gzip" though deflate works; and a body
// declared gzip that was not gzip was read as plain text (dead-lettered as "not valid JSON", or accepted),
// where docs/ingest.md answers a broken gzip body 400.
import { deflateSync, gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { deadLetterTopic, eventsTopic } from '../../../bus/topics.ts'
import { auth, fixture, startHarness, token } from './ingest-harness.ts'

const alerts = fixture('falco/falco-website.ndjson')
const logFile = fixture(
  'cloudtrail/envelopes/123456789012_CloudTrail_us-east-2_20160714T1920Z_EXAMPLEa1b2c3d4e.json.gz',
)
const firehose = fixture('cloudtrail/envelopes/firehose-http-request-cwl-cloudtrail.json')
const firehoseId = JSON.parse(firehose.toString()).requestId as string

/** Each route with a real body for it. */
const routes = [
  { url: '/v1/falco', body: alerts, headers: auth },
  { url: '/v1/cloudtrail', body: logFile, headers: auth },
  {
    url: '/v1/cloudtrail/firehose',
    body: firehose,
    headers: { 'x-amz-firehose-access-key': token, 'x-amz-firehose-request-id': firehoseId },
  },
]

/** The error message of an answer: `error.message`, or Firehose's `errorMessage`. */
const messageOf = (body: { error?: { message: string }; errorMessage?: string }) =>
  body.error?.message ?? body.errorMessage ?? ''

describe('Content-Encoding of a posted body', () => {
  it('refuses every coding but gzip and deflate with a 415 naming both, on every route', async () => {
    const h = await startHarness()
    for (const { url, body, headers } of routes) {
      for (const coding of ['snappy', 'aes128gcm', 'x-foo', 'br', 'zstd', 'compress', 'gzip, br']) {
        const res = await h.server.inject({
          method: 'POST',
          url,
          payload: body,
          headers: { ...headers, 'content-encoding': coding },
        })
        expect(res.statusCode, `${url} ${coding}`).toBe(415)
        const message = messageOf(res.json())
        expect(message, `${url} ${coding}`).toContain(coding)
        expect(message).toMatch(/gzip.*deflate/)
      }
    }
    expect(h.bus.published.size).toBe(0)
  })

  it('decodes gzip (in any case), x-gzip and deflate, and takes identity or no header as the body as sent', async () => {
    const h = await startHarness()
    const falco = [
      [gzipSync(alerts), 'gzip'],
      [gzipSync(alerts), 'x-gzip'],
      [deflateSync(alerts), 'deflate'],
      [alerts, 'identity'],
      [gzipSync(alerts), 'GZIP'],
      [alerts, ''],
    ] as const
    for (const [payload, coding] of falco) {
      const res = await h.server.inject({
        method: 'POST',
        url: '/v1/falco',
        payload,
        headers: { ...auth, ...(coding ? { 'content-encoding': coding } : {}) },
      })
      expect(res.statusCode, coding).toBe(202)
      expect(res.json().accepted, coding).toBe(20)
    }
  })

  it('refuses a body declared gzip that is no gzip stream: 400 saying so, nothing dead-lettered', async () => {
    const h = await startHarness()
    const oneAlert = alerts.toString().split('\n')[0] as string
    for (const payload of [Buffer.from(oneAlert), logFile.subarray(0, 40), Buffer.from('not gzip at all')]) {
      const res = await h.server.inject({
        method: 'POST',
        url: '/v1/falco',
        payload,
        headers: { ...auth, 'content-encoding': 'gzip' },
      })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.message).toContain('gzip stream is broken')
    }
    expect(h.bus.records(eventsTopic)).toHaveLength(0)
    expect(h.bus.records(deadLetterTopic)).toHaveLength(0)
  })
})
