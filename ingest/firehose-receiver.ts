// POST /v1/cloudtrail/firehose: the Amazon Data Firehose HTTP endpoint protocol 1.0. Each record's data
// is base64 of a gzipped CloudWatch Logs subscription payload (or, with Firehose's decompression and
// message extraction on, the CloudTrail records themselves). Answers exactly as Firehose expects:
// 200 {"requestId","timestamp"} on success; otherwise the status with "errorMessage" added. Records that
// are invalid go to the dead-letter topic and the delivery still succeeds: a retry could not fix them.
// A redelivered request id is answered 200 without publishing its events again.

import { isNerveError, NerveError } from '../runtime/errors.ts'
import { httpStatusByCode, type Route, type RouteRequest } from '../runtime/http-server.ts'
import { problemsOf, validateFirehoseRequest } from '../schemas/input-validators.ts'
import type { HttpConfig } from '../schemas/types.ts'
import type { Decoded } from './decode-events.ts'
import { decodeUtf8, gunzipLimited, readRequestBody } from './read-request-body.ts'
import { count, type ReceiverDeps } from './receive-items.ts'
import { createSeenRequestIds } from './seen-request-ids.ts'
import { type JsonItem, parseJson, splitJsonItems } from './split-json-items.ts'

/** Firehose retries for at most 2 hours (RetryOptions.DurationInSeconds ≤ 7200). */
const redeliveryWindowMs = 2 * 3_600_000 + 600_000
const maxErrorMessage = 8192

export function createFirehoseReceiver(
  config: HttpConfig,
  deps: ReceiverDeps & { now: () => number },
): Route {
  const telemetry = deps.metrics.component('firehose_receiver')
  const log = deps.log.child({ component: 'firehose_receiver' })
  const seen = createSeenRequestIds({ ttlMs: redeliveryWindowMs, max: 100_000 }, deps.now)
  const duplicates = deps.metrics.counter(
    'nerve_ingest_firehose_redeliveries_total',
    'Firehose deliveries answered 200 again without publishing (same request id).',
  )

  const records = async (req: RouteRequest): Promise<{ requestId: string; items: JsonItem[] }> => {
    // The body itself may be as large as Firehose's largest buffer; what its records decode to is bounded
    // by decompressed_limit_bytes below.
    const text = await readRequestBody(req, config.firehose_body_limit_bytes)
    let body: unknown
    try {
      body = parseJson(text)
    } catch (err) {
      throw new NerveError('INPUT_INVALID', `The body is not valid JSON: ${(err as Error).message}`)
    }
    if (!validateFirehoseRequest(body)) {
      const problems = problemsOf(validateFirehoseRequest, body)
      const message = problems.map((p) => `${p.path} ${p.message}`).join('; ')
      throw new NerveError('INPUT_INVALID', `Not a Firehose delivery request: ${message}`, {
        details: problems,
      })
    }
    const header = req.headers['x-amz-firehose-request-id']
    if (typeof header === 'string' && header !== body.requestId) {
      throw new NerveError('INPUT_INVALID', 'X-Amz-Firehose-Request-Id differs from the body requestId.')
    }
    if (body.records.length > config.max_items) {
      throw new NerveError(
        'PAYLOAD_TOO_LARGE',
        `At most ${config.max_items} records are accepted per delivery.`,
      )
    }
    const items: JsonItem[] = []
    const tooLarge = new NerveError(
      'PAYLOAD_TOO_LARGE',
      `The records are over ${config.decompressed_limit_bytes} bytes once decoded.`,
    )
    let budget = config.decompressed_limit_bytes
    for (const [index, record] of body.records.entries()) {
      let data: Buffer
      try {
        data = await gunzipLimited(Buffer.from(record.data, 'base64'), Math.max(1, budget))
      } catch (err) {
        if (isNerveError(err) && err.code === 'PAYLOAD_TOO_LARGE') throw tooLarge
        if (!isNerveError(err) || err.code !== 'INPUT_INVALID') throw err
        items.push({ index, error: `record data: ${err.message}`, original: () => record.data })
        continue
      }
      budget -= data.length
      if (budget < 0) throw tooLarge
      for (const item of recordItems(data, config)) items.push({ ...item, index })
    }
    return { requestId: body.requestId, items }
  }

  return {
    method: 'POST',
    url: '/v1/cloudtrail/firehose',
    auth: 'ingest',
    source: 'firehose',
    bodyLimit: Math.max(config.body_limit_bytes, config.firehose_body_limit_bytes),
    // Firehose sends the access key configured on the delivery stream, never a bearer token.
    authHint: 'X-Amz-Firehose-Access-Key: <token>, the access key of the HTTP endpoint destination',
    handle: async (req) => {
      let parsed: Awaited<ReturnType<typeof records>>
      try {
        parsed = await records(req)
      } catch (err) {
        if (isNerveError(err)) telemetry.error(err.code, 'read')
        throw err
      }
      const outcome = await seen.once(parsed.requestId, async () => {
        const decoded: Decoded = deps.decoder.decode('cloudtrail', parsed.items, {
          via: 'firehose',
          receivedAt: req.receivedAt,
          maxRecords: config.max_items,
          maxDepth: config.max_depth,
        })
        count(telemetry, decoded)
        try {
          await deps.publisher.publish('firehose_receiver', decoded, req.receivedAt)
        } catch (err) {
          if (isNerveError(err)) telemetry.error(err.code, 'publish')
          throw err
        }
        telemetry.sent(decoded.events.length)
        if (decoded.invalid.length > 0) {
          log.warn(
            { error_code: 'INPUT_INVALID', count: decoded.invalid.length },
            'Dead-lettered invalid records.',
          )
        }
      })
      if (outcome === 'duplicate') duplicates.inc()
      return { status: 200, body: { requestId: parsed.requestId, timestamp: deps.now() } }
    },
    formatError: (err, req) => {
      const requestId = req.headers['x-amz-firehose-request-id']
      return {
        status: httpStatusByCode[err.code],
        body: {
          requestId: typeof requestId === 'string' ? requestId : '',
          timestamp: deps.now(),
          errorMessage: err.message.slice(0, maxErrorMessage),
        },
      }
    },
  }
}

/** One record's decoded data → JSON items; data that is not JSON text is one invalid item. */
function recordItems(data: Buffer, config: HttpConfig): JsonItem[] {
  try {
    return splitJsonItems(decodeUtf8(data), { maxItems: config.max_items, maxDepth: config.max_depth })
  } catch (err) {
    if (isNerveError(err) && err.code === 'INPUT_INVALID') {
      return [{ index: 0, error: `record data: ${err.message}`, original: () => data.toString('base64') }]
    }
    throw err
  }
}
