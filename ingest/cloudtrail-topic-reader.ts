// CloudTrail from an existing Kafka topic that another shipper fills (config kafka.cloudtrail_topics):
// each record's value is one body in any supported form — a record, a log file {"Records":[…]} (gzip
// allowed), an EventBridge event, an array or NDJSON — decoded exactly as POST /v1/cloudtrail decodes it.
// Records that cannot be read at all go to the dead-letter topic with their bytes; a batch resolves only
// once its events and dead letters are durable, so the reader commits its offsets after that.
import type { Bus } from '../bus/bus.ts'
import { type DeadLetter, deadLetterTopic } from '../bus/topics.ts'
import { isNerveError } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { HttpConfig } from '../schemas/types.ts'
import type { Decoded, EventDecoder } from './decode-events.ts'
import { decodeInParts } from './decode-in-parts.ts'
import type { DecodedPublisher } from './publish-decoded.ts'
import { decodeUtf8InOwnTurn, gunzipLimited } from './read-request-body.ts'

export type TopicRecord = { value: Buffer; partition: number; offset: number }

export type CloudTrailTopicReader = {
  /** Decodes and publishes one batch of records read from `topic`; rejects (to be redelivered) when the bus does. */
  handle(topic: string, records: readonly TopicRecord[], receivedAt: number): Promise<void>
}

const component = 'kafka_cloudtrail_reader'

export function createCloudTrailTopicReader(
  limits: HttpConfig,
  deps: { bus: Bus; decoder: EventDecoder; publisher: DecodedPublisher; log: Logger; metrics: Metrics },
): CloudTrailTopicReader {
  const telemetry = deps.metrics.component(component)
  const log = deps.log.child({ component })

  const handle = async (topic: string, records: readonly TopicRecord[], receivedAt: number) => {
    telemetry.received(records.length)
    const unreadable: DeadLetter[] = []
    for (const record of records) {
      let decoded: Decoded
      try {
        const value = await gunzipLimited(record.value, limits.decompressed_limit_bytes)
        // At most max_items records per value, as per request body (a value of empty records gzips a
        // thousandfold, and each would be held and dead-lettered); a part at a time, as the routes decode.
        decoded = await decodeInParts(
          deps.decoder,
          'cloudtrail',
          await decodeUtf8InOwnTurn(value),
          { maxItems: limits.max_items, maxDepth: limits.max_depth },
          { via: 'kafka', receivedAt, maxRecords: limits.max_items, maxDepth: limits.max_depth },
        )
      } catch (err) {
        if (!isNerveError(err)) throw err
        telemetry.error(err.code, 'read')
        unreadable.push(deadLetterOf(topic, record, err.code, err.message, receivedAt))
        continue
      }
      await deps.publisher.publish(component, decoded, receivedAt)
      telemetry.sent(decoded.events.length)
      if (decoded.invalid.length > 0) telemetry.discarded(decoded.invalid.length, 'invalid')
    }
    if (unreadable.length > 0) {
      await deps.bus.publish(
        deadLetterTopic,
        unreadable.map((value) => ({ key: component, value })),
      )
      telemetry.discarded(unreadable.length, 'unreadable')
      log.warn(
        { error_code: 'INPUT_INVALID', topic, count: unreadable.length },
        'Dead-lettered unreadable records.',
      )
    }
  }

  return { handle }
}

function deadLetterOf(
  topic: string,
  record: TopicRecord,
  code: string,
  reason: string,
  receivedAt: number,
): DeadLetter {
  return {
    component,
    error_code: code,
    reason: `${topic}[${record.partition}]@${record.offset}: ${reason}`,
    index: record.offset,
    received_at: receivedAt,
    original: record.value.toString('base64'),
    original_encoding: 'base64',
  }
}
