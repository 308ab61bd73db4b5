// CloudTrail from S3 through SQS (config ingest.s3_sqs): long-polls each queue, reads the log files its
// notifications name, decodes them exactly as POST /v1/cloudtrail decodes a log file, and deletes a
// message only once every record of its objects (and every dead letter) is durable on the bus. While a
// message's objects are read its visibility timeout is extended; a message that keeps failing is
// dead-lettered with its last reason on its max_receives-th receive and deleted. Test events,
// CloudTrail-Digest/ objects and objects that are not CloudTrail log files are skipped, and so is an object
// read already (within a day, the last 20,000): whoever can send to the queue can name one log file again
// and again. An object that can never be read (gone, not CloudTrail, too big, a name S3 would not give) is
// dead-lettered on its own and the rest of the message goes on.
import type { S3Client } from '@aws-sdk/client-s3'
import {
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import type { Bus } from '../bus/bus.ts'
import { type DeadLetter, deadLetterTopic } from '../bus/topics.ts'
import { type ErrorCode, errorCodeOf, errorCodes, isNerveError } from '../runtime/errors.ts'
import type { ReadinessCheck } from '../runtime/http-routes.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { HttpConfig, S3SqsConfig } from '../schemas/types.ts'
import type { EventDecoder } from './decode-events.ts'
import { decodeInParts } from './decode-in-parts.ts'
import { fetchS3Object, nameOf, ObjectFailure, objectFields } from './fetch-s3-object.ts'
import { keepMessageHidden } from './keep-message-hidden.ts'
import type { DecodedPublisher } from './publish-decoded.ts'
import { decodeUtf8InOwnTurn, gunzipLimited } from './read-request-body.ts'
import { count } from './receive-items.ts'
import { parseS3Notification, type S3Notification, type S3ObjectRef } from './s3-event-notification.ts'
import { createSeenRequestIds } from './seen-request-ids.ts'

export type S3SqsReaderDeps = {
  /** The SQS client for a queue (its region's). */
  sqsFor: (queueUrl: string) => SQSClient
  s3: S3Client
  bus: Bus
  decoder: EventDecoder
  publisher: DecodedPublisher
  log: Logger
  metrics: Metrics
  now: () => number
}

export type S3SqsReader = { readiness: ReadinessCheck; close(): Promise<void> }

const component = 's3_sqs_reader'
/** Objects read already, skipped when named again: S3 may notify twice, and so may a forger, at will. */
const readObjects = { ttlMs: 86_400_000, max: 20_000 }

const isErrorCode = (code: string): code is ErrorCode => (errorCodes as readonly string[]).includes(code)

export function startS3SqsReader(
  config: S3SqsConfig,
  limits: Pick<HttpConfig, 'max_items' | 'max_depth'>,
  deps: S3SqsReaderDeps,
): S3SqsReader {
  const log = deps.log.child({ component })
  const telemetry = deps.metrics.component(component)
  const messages = deps.metrics.counter('nerve_s3_sqs_messages_total', 'SQS messages handled, by outcome.', [
    'outcome',
  ])
  const objects = deps.metrics.counter(
    'nerve_s3_sqs_objects_total',
    'S3 objects named by notifications, by outcome.',
    ['outcome'],
  )
  const bytes = deps.metrics.counter('nerve_s3_sqs_bytes_total', 'Bytes of S3 objects read, as stored.')
  const lag = deps.metrics.gauge(
    'nerve_s3_sqs_lag_seconds',
    'Age of the newest message received: seconds since SQS accepted it.',
  )
  const inFlight = deps.metrics.gauge('nerve_s3_sqs_messages_in_flight', 'Messages being processed now.')
  const visibilitySeconds = Math.max(1, Math.round(config.visibility_timeout / 1000))
  const allowed = new Set(config.buckets)
  const read = createSeenRequestIds(readObjects, deps.now)
  const abort = new AbortController()
  const failing = new Map<string, string>()
  let processing = 0

  const deadLetter = async (entries: DeadLetter[]) => {
    if (entries.length === 0) return
    await deps.bus.publish(
      deadLetterTopic,
      entries.map((value) => ({ key: component, value })),
    )
  }
  const deadLetterOf = (code: string, reason: string, original: string): DeadLetter => ({
    component,
    error_code: code,
    reason,
    received_at: deps.now(),
    original,
    original_encoding: 'utf8',
  })

  /** Publishes wait for room rather than fail: no one is waiting on this answer, and SQS keeps the message. */
  const publishWhenRoom = async (decoded: ReturnType<EventDecoder['decode']>, receivedAt: number) => {
    for (;;) {
      try {
        await deps.publisher.publish(component, decoded, receivedAt)
        return
      } catch (err) {
        if (!isNerveError(err) || err.code !== 'SATURATED' || abort.signal.aborted) throw err
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }

  const isAllowed = (ref: S3ObjectRef) => allowed.size === 0 || allowed.has(ref.bucket)

  /** Counts what the message names but nerve skips; dead letters for what it must not fetch. */
  const screen = (notification: Extract<S3Notification, { kind: 'objects' }>): DeadLetter[] => {
    const { digests, other, refused, duplicates, ignored } = notification
    if (digests.length > 0) objects.inc({ outcome: 'digest_skipped' }, digests.length)
    if (ignored > 0) objects.inc({ outcome: 'not_created' }, ignored)
    if (duplicates > 0) objects.inc({ outcome: 'duplicate' }, duplicates)
    const letters: DeadLetter[] = []
    for (const { reason, ...ref } of refused) {
      telemetry.error('INPUT_INVALID', 'notification')
      letters.push(deadLetterOf('INPUT_INVALID', `${nameOf(ref)}: refused, ${reason}`, JSON.stringify(ref)))
      objects.inc({ outcome: 'refused' })
    }
    for (const ref of [...notification.objects, ...other]) {
      if (isAllowed(ref)) continue
      telemetry.error('INPUT_INVALID', 'object')
      const reason = `${nameOf(ref)}: the bucket is not in ingest.s3_sqs.buckets.`
      letters.push(deadLetterOf('INPUT_INVALID', reason, JSON.stringify(ref)))
      objects.inc({ outcome: 'dead_lettered' })
    }
    const skipped = other.filter(isAllowed).length
    if (skipped > 0) objects.inc({ outcome: 'not_cloudtrail' }, skipped)
    return letters
  }

  const readObject = async (ref: S3ObjectRef): Promise<void> => {
    let body: Buffer
    try {
      body = await fetchS3Object(deps.s3, ref, config, abort.signal)
    } catch (err) {
      if (err instanceof ObjectFailure && err.timedOut) objects.inc({ outcome: 'timed_out' })
      throw err
    }
    bytes.inc(body.length)
    const receivedAt = deps.now()
    let decoded: ReturnType<EventDecoder['decode']>
    try {
      const text = await decodeUtf8InOwnTurn(await gunzipLimited(body, config.max_object_bytes))
      // At most max_items records per log file, as per request body: each invalid record is held and
      // dead-lettered, about 540 bytes of heap for the 3 bytes of a "{}," that gzip packs a thousandfold.
      // A part at a time, so that a large file does not hold the event loop (and the HTTP routes) meanwhile.
      decoded = await decodeInParts(
        deps.decoder,
        'cloudtrail',
        text,
        { maxItems: limits.max_items, maxDepth: limits.max_depth },
        { receivedAt, maxRecords: limits.max_items, maxDepth: limits.max_depth },
      )
    } catch (err) {
      if (!isNerveError(err)) throw err
      throw new ObjectFailure(ref, err.code, err.message, true)
    }
    count(telemetry, decoded)
    await publishWhenRoom(decoded, receivedAt)
    telemetry.sent(decoded.events.length)
    objects.inc({ outcome: 'read' })
  }

  /** Keeps the message hidden from its receive until it is handled; returns what stops that. */
  const keepHidden = (queueUrl: string, message: Message) =>
    keepMessageHidden(deps.sqsFor(queueUrl), queueUrl, message, visibilitySeconds, (err) => {
      log.warn({ err, message_id: message.MessageId }, 'Could not extend a message visibility timeout.')
    })

  const remove = (queueUrl: string, message: Message) =>
    deps
      .sqsFor(queueUrl)
      .send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }))

  const handleMessage = async (queueUrl: string, message: Message): Promise<void> => {
    const body = message.Body ?? ''
    const receives = Number(message.Attributes?.ApproximateReceiveCount ?? 1)
    const notification = parseS3Notification(body)
    if (notification.kind === 'test') {
      await remove(queueUrl, message)
      messages.inc({ outcome: 'test_event' })
      return
    }
    if (notification.kind === 'unreadable') {
      telemetry.error('INPUT_INVALID', 'notification')
      await deadLetter([
        deadLetterOf('INPUT_INVALID', `SQS message ${message.MessageId}: ${notification.reason}`, body),
      ])
      await remove(queueUrl, message)
      messages.inc({ outcome: 'dead_lettered' })
      log.warn(
        { error_code: 'INPUT_INVALID', message_id: message.MessageId },
        'Dead-lettered an unreadable notification.',
      )
      return
    }
    const permanent = screen(notification)
    try {
      for (const ref of notification.objects.filter(isAllowed)) {
        try {
          const once = await read.once(`${ref.bucket}/${ref.key}`, () => readObject(ref))
          if (once === 'duplicate') objects.inc({ outcome: 'duplicate' })
        } catch (err) {
          if (!(err instanceof ObjectFailure) || !err.permanent) throw err
          telemetry.error(isErrorCode(err.code) ? err.code : 'INPUT_INVALID', 'object')
          permanent.push(deadLetterOf(err.code, err.message, JSON.stringify(ref)))
          objects.inc({ outcome: 'dead_lettered' })
        }
      }
      await deadLetter(permanent)
      await remove(queueUrl, message)
      messages.inc({ outcome: 'deleted' })
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err)
      // Stopping is no failure of the message: SQS hands it out again once its visibility runs out.
      if (abort.signal.aborted) {
        messages.inc({ outcome: 'retried' })
        log.info(
          { message_id: message.MessageId },
          'Stopped while handling a message; SQS will redeliver it.',
        )
        return
      }
      const errorCode = err instanceof ObjectFailure ? 'SINK_UNAVAILABLE' : errorCodeOf(err)
      telemetry.error(errorCode, 'object')
      if (receives >= config.max_receives) {
        await deadLetter([
          deadLetterOf(
            'INPUT_INVALID',
            `SQS message ${message.MessageId} failed ${receives} receives; last: ${reason}`,
            body,
          ),
        ])
        await remove(queueUrl, message)
        messages.inc({ outcome: 'dead_lettered' })
        log.error(
          { message_id: message.MessageId, receives, reason },
          'Dead-lettered a message that kept failing.',
        )
      } else {
        messages.inc({ outcome: 'retried' })
        log.warn(
          { error_code: errorCode, message_id: message.MessageId, receives, reason, ...objectFields(err) },
          'A message failed; SQS will redeliver it.',
        )
      }
    }
  }

  const poll = async (queueUrl: string) => {
    let backoff = 0
    while (!abort.signal.aborted) {
      let received: Message[]
      try {
        const out = await deps.sqsFor(queueUrl).send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: Math.round(config.wait_time / 1000),
            VisibilityTimeout: visibilitySeconds,
            MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
          }),
          { abortSignal: abort.signal },
        )
        received = out.Messages ?? []
        failing.delete(queueUrl)
        backoff = 0
      } catch (err) {
        if (abort.signal.aborted) return
        failing.set(queueUrl, (err as Error).message)
        telemetry.error('SINK_UNAVAILABLE', 'receive')
        log.warn({ err, queue: queueUrl }, 'Could not receive from the queue; retrying.')
        backoff = Math.min(30_000, backoff === 0 ? 1000 : backoff * 2)
        await new Promise((r) => setTimeout(r, backoff * (0.5 + Math.random() / 2)))
        continue
      }
      const newest = Math.max(0, ...received.map((m) => Number(m.Attributes?.SentTimestamp ?? 0)))
      if (newest > 0) lag.set(Math.max(0, (deps.now() - newest) / 1000))
      // Every message of the receive is kept hidden from now on, not only once its turn comes: those
      // waiting behind a slow one would otherwise reappear and be read twice (and count receives).
      const stops = received.map((m) => keepHidden(queueUrl, m))
      for (let i = 0; i < received.length; i += config.concurrency) {
        const slice = received.slice(i, i + config.concurrency)
        processing += slice.length
        inFlight.set(processing)
        await Promise.all(
          slice.map((m, j) =>
            handleMessage(queueUrl, m)
              .catch((err: unknown) => {
                log.warn({ err, message_id: m.MessageId }, 'A message was left for SQS to redeliver.')
              })
              .finally(() => stops[i + j]?.()),
          ),
        )
        processing -= slice.length
        inFlight.set(processing)
      }
    }
  }

  if (allowed.size === 0) {
    log.warn(
      { error_code: 'CONFIG_INVALID' },
      'ingest.s3_sqs.buckets is empty: a message on the queue can make nerve read any bucket it may read. Name the trail buckets.',
    )
  }
  const loops = config.queues.map((queueUrl) => poll(queueUrl))
  log.info({ queues: config.queues.length }, 'Reading CloudTrail from S3 through SQS.')
  return {
    readiness: () =>
      failing.size === 0
        ? { ok: true }
        : { ok: false, detail: `${failing.size} of ${config.queues.length} queues cannot be received from` },
    close: async () => {
      abort.abort()
      await Promise.all(loops)
    },
  }
}
