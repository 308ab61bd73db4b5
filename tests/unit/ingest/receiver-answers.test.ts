import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { deadLetterTopic, eventsTopic } from '../../../bus/topics.ts'
import { NerveError } from '../../../runtime/errors.ts'
import { deepLogsPayload } from '../../helpers/deep-logs-message.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { auth, fixture, startHarness, token } from './ingest-harness.ts'

const alerts = fixture('falco/falco-website.ndjson').toString().trim().split('\n')
const firehoseBody = fixture('cloudtrail/envelopes/firehose-http-request-cwl-cloudtrail.json').toString()
const firehoseId = JSON.parse(firehoseBody).requestId as string

describe('receiver answers', () => {
  it('answers 401 on every write route without a valid token, and publishes nothing', async () => {
    const h = await startHarness()
    for (const url of ['/v1/falco', '/v1/cloudtrail', '/v1/cloudtrail/firehose']) {
      for (const headers of [{}, { authorization: 'Bearer nope' }, { 'x-amz-firehose-access-key': 'nope' }]) {
        const res = await h.server.inject({ method: 'POST', url, payload: alerts[0], headers })
        expect(res.statusCode).toBe(401)
      }
    }
    const firehose = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail/firehose',
      payload: firehoseBody,
    })
    expect(firehose.json()).toMatchObject({ requestId: '', errorMessage: expect.stringContaining('token') })
    expect(h.bus.published.size).toBe(0)
  })

  it("accepts Falco's http_output with ?token=", async () => {
    const h = await startHarness()
    const res = await h.server.inject({
      method: 'POST',
      url: `/v1/falco?token=${token}`,
      payload: alerts[19],
    })
    expect(res.statusCode).toBe(202)
    expect(res.json()).toEqual({ accepted: 1 })
  })

  it('accepts the valid items of a partial batch and names each invalid one (index, path, reason)', async () => {
    const h = await startHarness()
    const bad = '{"rule":"x","priority":"Loud","time":"yesterday","output_fields":{}}'
    const payload = [alerts[0], bad, alerts[1], 'not json', alerts[2]].join('\n')
    const res = await h.server.inject({ method: 'POST', url: '/v1/falco', payload, headers: auth })
    expect(res.statusCode).toBe(400)
    const body = res.json()
    expect(body).toMatchObject({ accepted: 3, rejected: 2, error: { code: 'INPUT_INVALID' } })
    expect(body.error.details).toEqual([
      { index: 1, path: '/time', reason: expect.stringContaining('RFC 3339') },
      { index: 1, path: '/priority', reason: expect.stringContaining('Falco priority') },
      { index: 3, path: '/', reason: expect.stringContaining('not valid JSON') },
    ])
    expect(h.bus.records(eventsTopic)).toHaveLength(3)
    const dead = h.bus.records(deadLetterTopic).map((r) => r.value)
    expect(dead.map((d) => [d.index, d.original])).toEqual([
      [1, bad],
      [3, 'not json'],
    ])
    expect(dead[0]).toMatchObject({ component: 'falco_receiver', error_code: 'INPUT_INVALID' })
  })

  it('names the record inside a log file by its path', async () => {
    const h = await startHarness()
    const payload = JSON.stringify({
      Records: [{ eventTime: '2024-01-01T00:00:00Z', eventSource: 'iam.amazonaws.com' }],
    })
    const res = await h.server.inject({ method: 'POST', url: '/v1/cloudtrail', payload, headers: auth })
    expect(res.json().error.details).toEqual([
      { index: 0, path: '/Records/0', reason: 'missing required key "eventName"' },
    ])
  })

  it('answers 413 over the item limit, the body limit and the decompressed limit (gzip bomb)', async () => {
    const h = await startHarness({ http: { max_items: 3, decompressed_limit_bytes: 1 << 20 } })
    const many = await h.server.inject({
      method: 'POST',
      url: '/v1/falco',
      payload: alerts.slice(0, 4).join('\n'),
      headers: auth,
    })
    expect(many.statusCode).toBe(413)
    expect(many.json().error.message).toContain('at most 3')
    const bomb = gzipSync(Buffer.alloc(64 << 20, 0x20))
    for (const headers of [{ ...auth, 'content-encoding': 'gzip' }, auth]) {
      const res = await h.server.inject({ method: 'POST', url: '/v1/cloudtrail', payload: bomb, headers })
      expect(res.statusCode).toBe(413)
      expect(res.json().error.message).toContain('decompressed')
    }
    const huge = await h.server.inject({
      method: 'POST',
      url: '/v1/falco',
      payload: Buffer.alloc(11 << 20, 0x20),
      headers: auth,
    })
    expect(huge.statusCode).toBe(413)
    expect(h.bus.published.size).toBe(0)
  })

  it('answers 400 for malformed bodies: empty, not JSON, too deep, broken gzip, text/plain, not UTF-8', async () => {
    const h = await startHarness()
    const deep = `${'['.repeat(100)}${']'.repeat(100)}`
    const cases: [string | Buffer, Record<string, string>, string][] = [
      ['', {}, 'empty'],
      ['{"rule":', {}, 'not valid JSON'],
      [deep, {}, 'nested deeper'],
      [Buffer.from([0x1f, 0x8b, 1, 2, 3]), {}, 'compressed'],
      ['12:00:00: Warning shell', { 'content-type': 'text/plain' }, 'json_output'],
      [Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), {}, 'not UTF-8'],
    ]
    for (const [payload, headers, reason] of cases) {
      const res = await h.server.inject({
        method: 'POST',
        url: '/v1/falco',
        payload,
        headers: { ...auth, ...headers },
      })
      expect(res.statusCode).toBe(400)
      expect(JSON.stringify(res.json())).toContain(reason)
    }
    expect(h.bus.records(eventsTopic)).toHaveLength(0)
  })

  // A CloudWatch Logs payload carries each record as a JSON string, parsed apart from the body: its depth
  // was never checked, so a record nested 100,000 deep reached the bus, and one without an eventID (its id
  // is then a hash of the record, made recursively) answered 500 (Firehose retries that, then drops the
  // whole delivery).
  it('holds a record inside a CloudWatch Logs message to max_depth too, on both CloudTrail routes', async () => {
    const h = await startHarness()
    const payload = deepLogsPayload
    for (const depth of [65, 100_000]) {
      const direct = await h.server.inject({
        method: 'POST',
        url: '/v1/cloudtrail',
        payload: JSON.stringify(payload(depth)),
        headers: { ...auth, 'content-type': 'application/json' },
      })
      expect(direct.statusCode).toBe(400)
      expect(direct.json()).toMatchObject({ accepted: 1, rejected: 2 })
      expect(JSON.stringify(direct.json().error.details)).toContain('nested deeper than 64 levels')
      const data = gzipSync(JSON.stringify(payload(depth))).toString('base64')
      const delivery = JSON.stringify({ requestId: `deep-${depth}`, timestamp: 1, records: [{ data }] })
      const firehose = await h.server.inject({
        method: 'POST',
        url: '/v1/cloudtrail/firehose',
        payload: delivery,
        headers: { 'x-amz-firehose-access-key': token },
      })
      expect(firehose.statusCode).toBe(200)
    }
    expect(h.bus.records(eventsTopic).map((r) => r.value.id)).toEqual([
      'shallow',
      'shallow',
      'shallow',
      'shallow',
    ])
  })

  // With the Falco spool off (falco-spool.test.ts has it on): the answers every other route gives.
  it('answers 429 with Retry-After when publishes are pending beyond the bound, 503 when the bus fails', async () => {
    const h = await startHarness({ maxPending: 1, spoolBytes: 0 })
    let release: () => void = () => {}
    // Hold the events only: learned identity links are shared on their own topic meanwhile.
    h.bus.before = (topic) =>
      topic === eventsTopic ? new Promise<void>((r) => (release = r)) : Promise.resolve()
    const first = h.server.inject({ method: 'POST', url: '/v1/falco', payload: alerts[0], headers: auth })
    await waitFor(() => h.ingest.readiness.ingest?.().ok === false, { what: 'a pending publish' })
    const second = await h.server.inject({
      method: 'POST',
      url: '/v1/falco',
      payload: alerts[1],
      headers: auth,
    })
    expect(second.statusCode).toBe(429)
    expect(second.headers['retry-after']).toBe('1')
    expect(h.ingest.readiness.ingest?.().ok).toBe(false)
    release()
    expect((await first).statusCode).toBe(202)
    h.bus.before = async () => {
      throw new Error('disk gone')
    }
    const failed = await h.server.inject({
      method: 'POST',
      url: '/v1/falco',
      payload: alerts[2],
      headers: auth,
    })
    expect(failed.statusCode).toBe(503)
    expect(failed.headers['retry-after']).toBe('5')
    h.bus.before = async () => {
      throw new NerveError('STORAGE_FULL', 'full')
    }
    const full = await h.server.inject({
      method: 'POST',
      url: '/v1/falco',
      payload: alerts[2],
      headers: auth,
    })
    expect(full.statusCode).toBe(507)
  })
})

describe('Firehose', () => {
  const headers = { 'x-amz-firehose-access-key': token, 'x-amz-firehose-request-id': firehoseId }

  it('does not publish a redelivered request id twice, even while the first is still in flight', async () => {
    const h = await startHarness({ maxPending: 1, spoolBytes: 0 })
    let release: () => void = () => {}
    // Hold the events only: learned identity links are shared on their own topic meanwhile.
    h.bus.before = (topic) =>
      topic === eventsTopic ? new Promise<void>((r) => (release = r)) : Promise.resolve()
    const first = h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail/firehose',
      payload: firehoseBody,
      headers,
    })
    await waitFor(() => h.ingest.readiness.ingest?.().ok === false, { what: 'the first delivery publishing' })
    const retry = h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail/firehose',
      payload: firehoseBody,
      headers,
    })
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r))
    h.bus.before = undefined
    release()
    expect((await first).statusCode).toBe(200)
    expect((await retry).json()).toEqual({ requestId: firehoseId, timestamp: 1_750_000_000_000 })
    const later = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail/firehose',
      payload: firehoseBody,
      headers,
    })
    expect(later.statusCode).toBe(200)
    expect(h.bus.records(eventsTopic)).toHaveLength(3)
    expect(await h.rt.metricValue('nerve_ingest_firehose_redeliveries_total')).toBe(2)
  })

  it('publishes a redelivery whose first attempt failed, and answers failures in the Firehose shape', async () => {
    const h = await startHarness()
    h.bus.before = async () => {
      throw new Error('down')
    }
    const failed = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail/firehose',
      payload: firehoseBody,
      headers,
    })
    expect(failed.statusCode).toBe(503)
    expect(failed.headers['retry-after']).toBe('5')
    expect(failed.json()).toEqual({
      requestId: firehoseId,
      timestamp: 1_750_000_000_000,
      errorMessage: expect.any(String),
    })
    h.bus.before = undefined
    const retry = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail/firehose',
      payload: firehoseBody,
      headers,
    })
    expect(retry.statusCode).toBe(200)
    expect(h.bus.records(eventsTopic)).toHaveLength(3)
  })

  it('answers 413 when the records together are over the decompressed limit (final for Firehose)', async () => {
    const h = await startHarness({ http: { decompressed_limit_bytes: 4096 } })
    const data = gzipSync(JSON.stringify({ padding: 'x'.repeat(3000) })).toString('base64')
    const payload = JSON.stringify({ requestId: firehoseId, timestamp: 1, records: [{ data }, { data }] })
    const res = await h.server.inject({ method: 'POST', url: '/v1/cloudtrail/firehose', payload, headers })
    expect(res.statusCode).toBe(413)
    expect(res.json()).toMatchObject({ requestId: firehoseId, errorMessage: expect.stringContaining('4096') })
    expect(h.bus.published.size).toBe(0)
  })

  it('answers 400 with errorMessage for a body that is not a delivery request; bad records are dead-lettered', async () => {
    const h = await startHarness()
    const notRequest = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail/firehose',
      payload: '{"records":[]}',
      headers,
    })
    expect(notRequest.statusCode).toBe(400)
    expect(notRequest.json().errorMessage).toContain('requestId')
    const body = JSON.stringify({
      requestId: firehoseId,
      timestamp: 1,
      records: [
        { data: Buffer.from('{"no":"record"}').toString('base64') },
        { data: gzipSync('garbage').toString('base64') },
      ],
    })
    const res = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail/firehose',
      payload: body,
      headers,
    })
    expect(res.statusCode).toBe(200)
    expect(h.bus.records(deadLetterTopic).map((d) => d.value.index)).toEqual([0, 1])
  })
})
