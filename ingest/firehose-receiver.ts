// POST /v1/cloudtrail/firehose: the Amazon Data Firehose HTTP endpoint protocol 1.0. Each record's data
// is base64 of a gzipped CloudWatch Logs subscription payload (or, with Firehose's decompression and
// message extraction on, the CloudTrail records themselves). Answers exactly as Firehose expects:
// 200 {"requestId","timestamp"} on success; otherwise the status with "errorMessage" added. Records that
// are invalid go to the dead-letter topic and the delivery still succeeds: a retry could not fix them.
// A redelivery (the same request id from the same sender, once published whole) is answered 200 without
// publishing its events again.

import { createHash } from 'node:crypto'
import { isNerveError, NerveError } from '../runtime/errors.ts'
import { httpStatusByCode, type Route, type RouteRequest } from '../runtime/http-routes.ts'
import { nextTurn } from '../runtime/next-turn.ts'
import {
  type FirehoseDeliveryRequest,
  problemsOf,
  validateFirehoseRequest,
} from '../schemas/input-validators.ts'
import type { HttpConfig } from '../schemas/types.ts'
import type { DecodeContext, Decoded } from './decode-events.ts'
import { decodeItemsInParts, partChars } from './decode-in-parts.ts'
import { describeJsonError, findJsonError, type JsonSyntaxError, jsonSyntaxError } from './find-json-error.ts'
import { firstNonSpace } from './json-text.ts'
import { decodeUtf8, decodeUtf8InOwnTurn, gunzipLimited, readRequestBody } from './read-request-body.ts'
import { count, type ReceiverDeps } from './receive-items.ts'
import { createSeenRequestIds } from './seen-request-ids.ts'
import { splitJsonDocumentInParts } from './split-json-document.ts'
import { type JsonItem, parseJson, splitJsonItems, splitJsonItemsInParts } from './split-json-items.ts'

/** Firehose retries for at most 2 hours (RetryOptions.DurationInSeconds ≤ 7200). */
const redeliveryWindowMs = 2 * 3_600_000 + 600_000
const maxErrorMessage = 8192

export function createFirehoseReceiver(
  config: HttpConfig,
  deps: ReceiverDeps & { now: () => number; pause?: () => Promise<void> },
): Route {
  const telemetry = deps.metrics.component('firehose_receiver')
  const log = deps.log.child({ component: 'firehose_receiver' })
  const seen = createSeenRequestIds({ ttlMs: redeliveryWindowMs, max: 100_000 }, deps.now)
  const duplicates = deps.metrics.counter(
    'nerve_ingest_firehose_redeliveries_total',
    'Firehose deliveries answered 200 again without publishing (same request id).',
  )

  const pause = deps.pause ?? nextTurn

  const records = async (
    req: RouteRequest,
  ): Promise<{ requestId: string; parts: JsonItem[][]; small: boolean }> => {
    // The body itself may be as large as Firehose's largest buffer; what its records decode to is bounded
    // by decompressed_limit_bytes below.
    const text = await readRequestBody(req, config.firehose_body_limit_bytes)
    // A small delivery (Firehose's own, a few records) is parsed and validated whole, as one part would be.
    const whole = text.length <= partChars
    let body: unknown
    if (whole) {
      try {
        body = parseJson(text)
      } catch (err) {
        throw notJson(jsonSyntaxError(text), err)
      }
    } else body = await inParts(parseInParts(text), pause)
    const valid = whole ? validateFirehoseRequest(body) : await inParts(validateInParts(body), pause)
    if (!valid) {
      // Validated again whole for the problems' paths (an invalid request only).
      validateFirehoseRequest(body)
      const problems = problemsOf(validateFirehoseRequest, body)
      const message = problems.map((p) => `${p.path} ${p.message}`).join('; ')
      throw new NerveError('INPUT_INVALID', `Not a Firehose delivery request: ${message}`, {
        details: problems,
      })
    }
    const delivery = body as FirehoseDeliveryRequest
    const header = req.headers['x-amz-firehose-request-id']
    if (typeof header === 'string' && header !== delivery.requestId) {
      throw new NerveError('INPUT_INVALID', 'X-Amz-Firehose-Request-Id differs from the body requestId.')
    }
    if (delivery.records.length > config.max_items) {
      throw new NerveError(
        'PAYLOAD_TOO_LARGE',
        `At most ${config.max_items} records are accepted per delivery.`,
      )
    }
    // The records' items in parts of about partChars characters of decoded data, the loop given back
    // between parts (each record's base64 decoded and gunzipped as before).
    const parts: JsonItem[][] = []
    let part: JsonItem[] = []
    let partSize = 0
    const tooLarge = new NerveError(
      'PAYLOAD_TOO_LARGE',
      `The records are over ${config.decompressed_limit_bytes} bytes once decoded.`,
    )
    let budget = config.decompressed_limit_bytes
    for (const [index, record] of delivery.records.entries()) {
      if (partSize >= partChars) {
        parts.push(part)
        part = []
        partSize = 0
        await pause()
      }
      partSize += record.data.length
      let data: Buffer
      try {
        data = await gunzipLimited(Buffer.from(record.data, 'base64'), Math.max(1, budget))
      } catch (err) {
        if (isNerveError(err) && err.code === 'PAYLOAD_TOO_LARGE') throw tooLarge
        if (!isNerveError(err) || err.code !== 'INPUT_INVALID') throw err
        part.push({ index, error: `record data: ${err.message}`, original: () => record.data })
        continue
      }
      budget -= data.length
      if (budget < 0) throw tooLarge
      partSize += data.length
      for (const item of await recordItems(data, config, pause)) part.push({ ...item, index })
    }
    if (part.length > 0) parts.push(part)
    // One part of at most partChars: a small delivery, decoded in one go. One large record is not.
    const small = parts.length === 0 || (parts.length === 1 && partSize <= partChars)
    return { requestId: delivery.requestId, parts, small }
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
      const outcome = await seen.once(redeliveryKey(req, parsed.requestId), async () => {
        const ctx: DecodeContext = {
          via: 'firehose',
          receivedAt: req.receivedAt,
          maxRecords: config.max_items,
          maxDepth: config.max_depth,
        }
        // A small delivery is decoded in one go, as before; a larger one a part at a time.
        const decoded: Decoded = parsed.small
          ? deps.decoder.decode('cloudtrail', parsed.parts[0] ?? [], ctx)
          : await decodeItemsInParts(deps.decoder, 'cloudtrail', parsed.parts, ctx, pause)
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

/**
 * What makes a delivery a redelivery: its request id and who sent it. Firehose chooses the id (a UUID per
 * delivery, the same on each retry) and shows the same access key each time, but any holder of a token
 * that opens this route may post any id: keyed by the id alone, a delivery posted first with a real
 * delivery's id (seen in a log, or replayed) would have that delivery dropped unseen. The sender is every
 * credential the request showed (the server checked that one of them opens the route), hashed: a fixed
 * size however long the headers, and no token held in the map.
 */
function redeliveryKey(req: RouteRequest, requestId: string): string {
  const shown = [req.headers.authorization, req.query.token, req.headers['x-amz-firehose-access-key']]
  const sender = createHash('sha256')
  for (const credential of shown) sender.update(`${typeof credential === 'string' ? credential : ''}\0`)
  return `${sender.digest('base64url')} ${requestId}`
}

/**
 * One record's decoded data → JSON items; data that is not JSON text is one invalid item. Data over
 * partChars is decoded in its own turn and split a part at a time (splitJsonItemsInParts gives the items
 * splitJsonItems gives).
 */
async function recordItems(
  data: Buffer,
  config: HttpConfig,
  pause: () => Promise<void>,
): Promise<JsonItem[]> {
  const limits = { maxItems: config.max_items, maxDepth: config.max_depth }
  try {
    if (data.length <= partChars) return splitJsonItems(decodeUtf8(data), limits)
    const items: JsonItem[] = []
    for (const part of splitJsonItemsInParts(await decodeUtf8InOwnTurn(data, pause), limits, partChars)) {
      for (const item of part) items.push(item)
      await pause()
    }
    return items
  } catch (err) {
    if (isNerveError(err) && err.code === 'INPUT_INVALID') {
      return [{ index: 0, error: `record data: ${err.message}`, original: () => data.toString('base64') }]
    }
    throw err
  }
}

/** Runs a generator to its end, awaiting `pause` at each of its yields. */
async function inParts<T>(steps: Generator<unknown, T, undefined>, pause: () => Promise<void>): Promise<T> {
  let step = steps.next()
  while (!step.done) {
    await pause()
    step = steps.next()
  }
  return step.value
}

const unlimited = { maxItems: Number.POSITIVE_INFINITY, maxDepth: Number.POSITIVE_INFINITY }

/** The 400 of a body that is not JSON: why and where ("… in JSON at position 37"), as Firehose logs it. */
function notJson(error: JsonSyntaxError | undefined, thrown?: unknown): NerveError {
  const why = error ? describeJsonError(error) : (thrown as Error).message
  return new NerveError('INPUT_INVALID', `The body is not valid JSON: ${why}`)
}

/**
 * parseJson(text), read and parsed in parts of about partChars characters (splitJsonDocumentInParts: the
 * records array element by element). Text that is not one well-formed array or object is read in parts
 * too, for the first syntax error (findJsonError): a broken 64 MiB body was parsed whole to say why.
 */
function* parseInParts(text: string): Generator<void, unknown, undefined> {
  const items: JsonItem[] = []
  const parts = splitJsonDocumentInParts(text, unlimited, partChars)
  let step = parts.next()
  while (!step.done) {
    for (const item of step.value) items.push(item)
    yield
    step = parts.next()
  }
  const open = text.charCodeAt(firstNonSpace(text))
  if (!step.value) {
    const error = yield* findJsonError(text, partChars)
    if (error) throw notJson(error)
    // Well-formed: a scalar is no delivery request whatever it holds, and the validator answers it by its
    // type alone ("must be object"), so it is not parsed.
    if (open !== 91 && open !== 123) return scalarOfType(open)
    return parseJson(text)
  }
  if (open === 91) return items.map((item) => item.value)
  return items[0]?.value
}

/** A value of the JSON type that starts with `first`: `"` a string, `t`/`f` a boolean, `n` null, else a number. */
function scalarOfType(first: number): unknown {
  if (first === 34) return ''
  if (first === 116 || first === 102) return first === 116
  return first === 110 ? null : 0
}

/**
 * validateFirehoseRequest(body), the records checked in slices of about partChars characters of data
 * (every rule of the schema on a record holds for each record alone; `minItems` holds for every slice).
 */
function* validateInParts(body: unknown): Generator<void, boolean, undefined> {
  const records =
    typeof body === 'object' && body !== null ? (body as { records?: unknown }).records : undefined
  if (!Array.isArray(records)) return validateFirehoseRequest(body)
  let from = 0
  let size = 0
  for (let i = 0; i < records.length; i++) {
    const data = (records[i] as { data?: unknown } | null)?.data
    size += 16 + (typeof data === 'string' ? data.length : 0)
    if (size >= partChars || i === records.length - 1) {
      if (from > 0) yield
      if (!validateFirehoseRequest({ ...(body as object), records: records.slice(from, i + 1) })) return false
      from = i + 1
      size = 0
    }
  }
  return records.length > 0 || validateFirehoseRequest(body)
}
