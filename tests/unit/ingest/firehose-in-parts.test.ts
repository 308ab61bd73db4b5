// POST /v1/cloudtrail/firehose decodes a large delivery in parts (issue 17: no request holds the event loop
// for more than 50 ms): the answers and what is published must be what the whole-body decode gave, which
// `reference` below restates (the route's code before it was cut into parts), for crafted deliveries.
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { createEventDecoder, type Decoded } from '../../../ingest/decode-events.ts'
import { createFirehoseReceiver } from '../../../ingest/firehose-receiver.ts'
import type { DecodedPublisher } from '../../../ingest/publish-decoded.ts'
import { decodeUtf8, gunzipLimited } from '../../../ingest/read-request-body.ts'
import { type JsonItem, parseJson, splitJsonItems } from '../../../ingest/split-json-items.ts'
import { isNerveError, NerveError } from '../../../runtime/errors.ts'
import { createHttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { problemsOf, validateFirehoseRequest } from '../../../schemas/input-validators.ts'
import type { HttpConfig } from '../../../schemas/types.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { fixture } from './ingest-harness.ts'

const token = 'nrv_firehose-parts-token-0123456789'
const requestId = 'ed4acda5-034f-9f42-bba1-f29aea6d7d8f'
const receivedAt = 1_750_000_000_000

const trail = fixture('cloudtrail/stratus-red-team-detonation-logs.ndjson')
  .toString()
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as Record<string, unknown>)

/** CloudTrail record n (distinct event ids), as CloudWatch Logs would carry it. */
const record = (n: number) => ({
  ...trail[n % trail.length],
  eventID: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
})

const logsPayload = (first: number, count: number) =>
  JSON.stringify({
    messageType: 'DATA_MESSAGE',
    owner: '111122223333',
    logGroup: 'aws-cloudtrail-logs',
    logStream: '111122223333_CloudTrail_us-east-1',
    subscriptionFilters: ['nerve'],
    logEvents: Array.from({ length: count }, (_, i) => ({
      id: String(first + i),
      timestamp: 1_750_000_000_000,
      message: JSON.stringify(record(first + i)),
    })),
  })

const data = (text: string | Buffer, gzip = true) =>
  (gzip ? gzipSync(text) : Buffer.from(text)).toString('base64')

/** About 150 records of CloudWatch Logs payloads (about 300 KiB decoded), and some odd ones among them. */
function largeRecords(): { data: string }[] {
  const records: { data: string }[] = []
  for (let r = 0; r < 150; r++) records.push({ data: data(logsPayload(r * 10, 10)) })
  records.splice(3, 0, { data: data('not json at all') })
  records.splice(7, 0, { data: Buffer.from([0x1f, 0x8b, 1, 2, 3]).toString('base64') })
  records.splice(11, 0, { data: data(Buffer.from([0xff, 0xfe, 0x41])) })
  // Firehose's message extraction on: the record is the CloudTrail record itself, not gzipped.
  records.splice(20, 0, { data: data(JSON.stringify(record(90_000)), false) })
  records.splice(25, 0, {
    data: data(`${JSON.stringify(record(90_001))}\n${JSON.stringify(record(90_002))}`),
  })
  records.splice(30, 0, { data: data(JSON.stringify({ ...record(90_003), eventTime: 'yesterday' })) })
  records.splice(40, 0, {
    data: data(JSON.stringify({ messageType: 'CONTROL_MESSAGE', logEvents: [{ id: '1', message: 'x' }] })),
  })
  // One record whose data alone is several parts (split in parts too).
  records.splice(60, 0, { data: data(logsPayload(100_000, 400)) })
  return records
}

const delivery = (records: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ requestId, timestamp: 1_750_000_000_000, ...extra, records })

type Outcome = { status: number; body: Record<string, unknown>; decoded?: Decoded }

/** The route's code before it was decoded in parts: one parse, one validation, one decode. */
async function reference(
  config: HttpConfig,
  text: string,
  header: string,
  arrival: number,
): Promise<Outcome> {
  const fail = (err: NerveError): Outcome => ({
    status: err.code === 'PAYLOAD_TOO_LARGE' ? 413 : 400,
    body: { requestId: header, timestamp: receivedAt, errorMessage: err.message },
  })
  let body: unknown
  try {
    body = parseJson(text)
  } catch (err) {
    // V8 names no position for an end of input; the route does (firehose-broken-body.test.ts).
    const why = (err as Error).message.replace(
      /^Unexpected end of JSON input$/,
      `$& at position ${text.length}`,
    )
    return fail(new NerveError('INPUT_INVALID', `The body is not valid JSON: ${why}`))
  }
  if (!validateFirehoseRequest(body)) {
    const message = problemsOf(validateFirehoseRequest, body)
      .map((p) => `${p.path} ${p.message}`)
      .join('; ')
    return fail(new NerveError('INPUT_INVALID', `Not a Firehose delivery request: ${message}`))
  }
  if (header !== body.requestId)
    return fail(new NerveError('INPUT_INVALID', 'X-Amz-Firehose-Request-Id differs from the body requestId.'))
  if (body.records.length > config.max_items)
    return fail(
      new NerveError('PAYLOAD_TOO_LARGE', `At most ${config.max_items} records are accepted per delivery.`),
    )
  const items: JsonItem[] = []
  const tooLarge = new NerveError(
    'PAYLOAD_TOO_LARGE',
    `The records are over ${config.decompressed_limit_bytes} bytes once decoded.`,
  )
  let budget = config.decompressed_limit_bytes
  for (const [index, r] of body.records.entries()) {
    let bytes: Buffer
    try {
      bytes = await gunzipLimited(Buffer.from(r.data, 'base64'), Math.max(1, budget))
    } catch (err) {
      if (isNerveError(err) && err.code === 'PAYLOAD_TOO_LARGE') return fail(tooLarge)
      items.push({ index, error: `record data: ${(err as Error).message}`, original: () => r.data })
      continue
    }
    budget -= bytes.length
    if (budget < 0) return fail(tooLarge)
    try {
      const split = splitJsonItems(decodeUtf8(bytes), {
        maxItems: config.max_items,
        maxDepth: config.max_depth,
      })
      for (const item of split) items.push({ ...item, index })
    } catch (err) {
      if (isNerveError(err) && err.code === 'PAYLOAD_TOO_LARGE') return fail(err)
      const message = (err as Error).message
      items.push({ index, error: `record data: ${message}`, original: () => bytes.toString('base64') })
    }
  }
  try {
    const decoded = decoder().decode('cloudtrail', items, {
      via: 'firehose',
      receivedAt: arrival,
      maxRecords: config.max_items,
      maxDepth: config.max_depth,
    })
    return { status: 200, body: { requestId: body.requestId, timestamp: receivedAt }, decoded }
  } catch (err) {
    return fail(err as NerveError)
  }
}

const decoder = () => createEventDecoder({ agents: [], revoke: { self_identities: [] } })

async function post(
  config: HttpConfig,
  text: string,
  header = requestId,
): Promise<Outcome & { pauses: number; wholeDecodes: number }> {
  const rt = createTestRuntime()
  const server = createHttpServer(config, { log: rt.log, metrics: rt.metrics, ingestToken: token })
  let decoded: Decoded | undefined
  let pauses = 0
  let wholeDecodes = 0
  const counted = decoder()
  const decode = counted.decode
  counted.decode = (...args) => {
    wholeDecodes++
    return decode(...args)
  }
  server.addRoutes([
    createFirehoseReceiver(config, {
      log: rt.log,
      metrics: rt.metrics,
      now: () => receivedAt,
      decoder: counted,
      publisher: {
        publish: async (_component: string, d: Decoded) => {
          decoded = d
        },
      } as unknown as DecodedPublisher,
      pause: async () => {
        pauses++
        await new Promise((resolve) => setImmediate(resolve))
      },
    }),
  ])
  const res = await server.inject({
    method: 'POST',
    url: '/v1/cloudtrail/firehose',
    payload: text,
    headers: {
      'content-type': 'application/json',
      'x-amz-firehose-access-key': token,
      'x-amz-firehose-request-id': header,
    },
  })
  const out = { status: res.statusCode, body: res.json() as Record<string, unknown>, pauses, wholeDecodes }
  return decoded ? { ...out, decoded } : out
}

/** Same answer and same published events, invalid records and skips as the whole-body decode. */
async function expectSame(text: string, http: Partial<HttpConfig> = {}, header = requestId) {
  const config = { ...loadConfig().http, ...http }
  const got = await post(config, text, header)
  // The events' received_at is the request's arrival, wall-clock.
  const arrival = got.decoded?.events[0]?.received_at ?? receivedAt
  const want = await reference(config, text, header, arrival)
  expect({ status: got.status, body: got.body }).toEqual({ status: want.status, body: want.body })
  expect(got.decoded).toEqual(want.decoded)
  return got
}

describe('POST /v1/cloudtrail/firehose in parts', () => {
  it('answers and publishes as before for the fixture (one part, no pause)', async () => {
    const got = await expectSame(
      fixture('cloudtrail/envelopes/firehose-http-request-cwl-cloudtrail.json').toString(),
    )
    expect(got.decoded?.events).toHaveLength(3)
    expect(got.wholeDecodes).toBe(1)
  })

  it('decodes a large delivery in parts, giving the loop back, with the same events, dead letters and skips', async () => {
    const got = await expectSame(delivery(largeRecords()))
    expect(got.status).toBe(200)
    expect(got.decoded?.events.length).toBeGreaterThan(1_800)
    expect(got.decoded?.invalid.length).toBeGreaterThanOrEqual(4)
    expect(got.decoded?.skipped).toEqual({ control_message: 1 })
    // The body parse, the validation, the records' decoding and the normalization each gave the loop back.
    expect(got.pauses).toBeGreaterThan(30)
  })

  it('decodes a delivery of one large record in parts too', async () => {
    const got = await expectSame(delivery([{ data: data(logsPayload(0, 300)) }]))
    expect(got.decoded?.events).toHaveLength(300)
    // Its data decoded in its own turn and split in parts, its 300 records normalized 64 at a time.
    expect(got.wholeDecodes).toBe(0)
    expect(got.pauses).toBeGreaterThan(5)
  })

  it('reads a body as JSON.parse does: duplicate keys, __proto__, integers beyond 2^53, other members', async () => {
    const records = JSON.stringify(largeRecords())
    const text = `{"requestId":"other","__proto__":{"requestId":"x"},"timestamp":1750000000000,"extra":[[[[{"a":12345678901234567890}]]]],"records":[],"requestId":"${requestId}","records":${records}}`
    expect((await expectSame(text)).status).toBe(200)
  })

  it('answers invalid deliveries as before', async () => {
    const records = largeRecords()
    const bad = [...records]
    bad.splice(120, 0, { data: '!!not base64!!' })
    for (const text of [
      delivery(bad),
      delivery([...records, { nodata: true }]),
      delivery([]),
      delivery({ data: 'x' }),
      `${delivery(records).slice(0, -2)}`,
      `${delivery(records)} x`,
      JSON.stringify(records),
      '',
      '"a string"',
      delivery(records, { requestId: 7 }),
    ]) {
      const got = await expectSame(text)
      expect(got.status).toBe(400)
    }
    expect((await expectSame(delivery(records), {}, 'another-request-id')).status).toBe(400)
  })

  it('keeps the limits: records per delivery, decompressed size, records per item', async () => {
    const records = largeRecords()
    expect((await expectSame(delivery(records), { max_items: 100 })).status).toBe(413)
    expect((await expectSame(delivery(records), { decompressed_limit_bytes: 200_000 })).status).toBe(413)
    // Over max_items records once the payloads are unwrapped: 413 too (its message counts differently).
    const config = { ...loadConfig().http, max_items: 1_000 }
    const got = await post(config, delivery(records.slice(0, 140)))
    expect(got.status).toBe(413)
    expect(got.body.errorMessage).toMatch(/at most 1000 are accepted per request/)
    expect(got.decoded).toBeUndefined()
  })
})
