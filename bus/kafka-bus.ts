// The Kafka bus: with its consumer (kafka-consumer.ts), the only code that imports kafkajs (in maintenance
// mode, so it stays fenced here).
// - publish: JSON values keyed by agent id, Kafka's default murmur2 partitioner (kafka-partitioner.ts), an
//   idempotent producer with acks=all; resolves once the in-sync replicas have the records. A publish is
//   split so that no partition's batch in one produce request exceeds max_message_bytes (MESSAGE_TOO_LARGE
//   is not retriable); a single record over it is dead-lettered with the reason (kafka-produce-requests.ts).
// - subscribe: one kafkajs consumer per (topic, group) (kafka-consumer.ts): an offset is committed only
//   after the handler resolved; a partition's batches wait for its onAssign.
// - subscribeRaw: an external topic of raw bytes (CloudTrail that another shipper writes to Kafka).
// - openKeyValueLog: latest value per key over a compacted topic (checkpoints, shared identity links).
// Errors become NerveError BUS_UNAVAILABLE with kafkajs's own `retriable` decision (kafka-retry.ts).
import { randomUUID } from 'node:crypto'
import { CompressionTypes, Kafka, type LogEntry, logLevel } from 'kafkajs'
import { NerveError } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { KafkaConfig } from '../schemas/types.ts'
import type {
  Bus,
  BusRecord,
  DeliveredRecord,
  Handled,
  KeyValueLog,
  SubscribeOptions,
  Subscription,
  Topic,
} from './bus.ts'
import {
  kafkaClientOptions,
  kafkaTopicName,
  nerveTopicSpecs,
  producerOptions,
  requiredAcks,
  retryPolicy,
  topicSpec,
} from './kafka-config.ts'
import {
  type ConsumerDeps,
  consume,
  type Decode,
  type KafkaSubscription,
  type RawSubscribeOptions,
} from './kafka-consumer.ts'
import { createKeyValueTable, type LogRecord } from './kafka-key-value-log.ts'
import { partitionForKey } from './kafka-partitioner.ts'
import { planProduceRequests } from './kafka-produce-requests.ts'
import { busError } from './kafka-retry.ts'
import { createKafkaTelemetry } from './kafka-telemetry.ts'
import { type DeadLetter, deadLetterTopic } from './topics.ts'

/** A record of an external topic, as bytes: nerve did not write it and does not assume its format. */
export type RawRecord = {
  key: string | null
  value: Buffer
  partition: number
  offset: number
  /** Broker (or producer) timestamp, epoch ms. */
  timestamp: number
}

export type KafkaBus = Bus & {
  /** Reads an existing topic (no prefix, never created) as raw bytes; same commit rules as subscribe(). */
  subscribeRaw(
    topicName: string,
    group: string,
    handle: (batch: readonly RawRecord[]) => Promise<void>,
    options?: RawSubscribeOptions,
  ): Promise<Subscription>
  /**
   * The latest value per key of a compacted topic (created compacted when allowed), shared by all instances.
   * T is the value shape the caller owns: openKeyValueLog<PartitionCheckpoint>(correlatorStateTopic).
   */
  openKeyValueLog<T>(topic: Topic<unknown>): Promise<KeyValueLog<T>>
  /** For /readyz: false while partitions are being restored (onAssign pending) or the bus is closed. */
  readiness(): { ok: boolean; detail?: string }
}

/** The part of kafkajs the bus uses; tests hand in a double of it. */
export type KafkaClient = Pick<Kafka, 'admin' | 'producer' | 'consumer'>
export type KafkaClientConfig = ConstructorParameters<typeof Kafka>[0]

export type KafkaBusDeps = {
  log: Logger
  metrics: Metrics
  now?: () => number
  random?: () => number
  /** Default: kafkajs itself. */
  createClient?: (options: KafkaClientConfig) => KafkaClient
}

const kvCatchUpTimeoutMs = 60_000

export async function createKafkaBus(config: KafkaConfig, deps: KafkaBusDeps): Promise<KafkaBus> {
  const now = deps.now ?? Date.now
  const random = deps.random ?? Math.random
  const log = deps.log.child({ component: 'kafka_bus' })
  const telemetry = createKafkaTelemetry(deps.metrics)
  const createClient = deps.createClient ?? ((options: KafkaClientConfig) => new Kafka(options))
  const kafka = createClient({
    ...kafkaClientOptions(config),
    logLevel: logLevel.INFO,
    logCreator: pinoLogCreator(log),
  })
  if (config.sasl && !config.ssl) {
    log.warn({ mechanism: config.sasl.mechanism }, 'SASL without TLS sends credentials in the clear.')
  }
  const compression = config.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None
  const admin = kafka.admin({ retry: retryPolicy })
  const producer = kafka.producer({
    ...producerOptions,
    createPartitioner:
      () =>
      ({ message, partitionMetadata }) =>
        partitionForKey(
          message.key === null || message.key === undefined ? '' : message.key,
          partitionMetadata.length,
        ),
  })
  try {
    await admin.connect()
    await producer.connect()
  } catch (err) {
    await Promise.allSettled([producer.disconnect(), admin.disconnect()])
    throw busError(err, 'connect')
  }

  const partitions = new Map<string, number>()
  const ensured = new Map<string, Promise<void>>()
  const subscriptions = new Set<KafkaSubscription>()
  const inFlight = new Set<Promise<unknown>>()
  let closed = false

  /** nerve's own topics are made as start makes them (the links topic compacted), whoever asks first. */
  const nerveSpecs = new Map(nerveTopicSpecs(config).map((spec) => [spec.topic, spec]))
  const ensureTopic = (name: string, opts: { compacted?: boolean; create?: boolean } = {}) => {
    let done = ensured.get(name)
    if (!done) {
      done = (async () => {
        if (config.create_topics && opts.create !== false) {
          const spec = nerveSpecs.get(name) ?? topicSpec(config, name, opts)
          await admin.createTopics({ topics: [spec], waitForLeaders: true })
        }
        const metadata = await admin.fetchTopicMetadata({ topics: [name] })
        partitions.set(name, metadata.topics[0]?.partitions.length ?? config.partitions)
      })().catch((err: unknown) => {
        ensured.delete(name)
        throw busError(err, `topic ${name}`)
      })
      ensured.set(name, done)
    }
    return done
  }

  if (config.create_topics) {
    try {
      await admin.createTopics({ topics: nerveTopicSpecs(config), waitForLeaders: true })
    } catch (err) {
      await Promise.allSettled([producer.disconnect(), admin.disconnect()])
      throw busError(err, 'topic creation')
    }
  }

  const consumerDeps: ConsumerDeps = { kafka, config, log, telemetry, now, random, subscriptions }

  const track = <T>(work: Promise<T>): Promise<T> => {
    inFlight.add(work)
    return work.finally(() => inFlight.delete(work))
  }

  const refuseIfClosed = () => {
    if (closed) throw new NerveError('BUS_CLOSED', 'The Kafka bus is closed.')
  }

  const send = async (name: string, messages: { key: string; value: string | null }[]) => {
    try {
      await producer.send({ topic: name, messages, acks: requiredAcks, compression })
    } catch (err) {
      const error = busError(err, 'publish')
      telemetry.component.error(error.code, 'publish', messages.length)
      log.warn(
        { error_code: error.code, retriable: error.retriable, topic: name, count: messages.length, err },
        'Publish failed.',
      )
      throw error
    }
  }

  /** What is left of a record no batch can hold: its reason, and as much of it as fits beside it. */
  const tooLarge = (name: string, value: string, bytes: number): { key: string; value: string } => {
    const keep = Math.floor(config.max_message_bytes / 4)
    const letter: DeadLetter = {
      component: 'kafka_bus',
      error_code: 'PAYLOAD_TOO_LARGE',
      reason: `A record of ${bytes} bytes for ${name} is over kafka.max_message_bytes (${config.max_message_bytes}); its first ${keep} characters are kept.`,
      received_at: now(),
      original: value.slice(0, keep),
      original_encoding: 'utf8',
    }
    return { key: 'kafka_bus', value: JSON.stringify(letter) }
  }

  const publish = async <T>(topic: Topic<T>, records: readonly BusRecord<T>[]) => {
    refuseIfClosed()
    if (records.length === 0) return
    const name = kafkaTopicName(config, topic)
    const messages = records.map((r, index) => {
      const value = r.text ?? JSON.stringify(r.value)
      if (value === undefined) {
        throw new NerveError('INPUT_INVALID', `Record ${index} for ${name} has no JSON form.`)
      }
      return { key: r.key, value }
    })
    await track(
      (async () => {
        await ensureTopic(name)
        const count = partitions.get(name) ?? config.partitions
        const plan = planProduceRequests(
          messages,
          (key) => partitionForKey(key, count),
          config.max_message_bytes,
        )
        for (const request of plan.requests) await send(name, request)
        telemetry.component.sent(messages.length - plan.oversized.length)
        if (plan.oversized.length > 0) {
          const deadLetters = kafkaTopicName(config, deadLetterTopic)
          await ensureTopic(deadLetters)
          await send(
            deadLetters,
            plan.oversized.map((o) =>
              tooLarge(name, (messages[o.index] as { value: string }).value, o.bytes),
            ),
          )
          telemetry.component.discarded(plan.oversized.length, 'too_large')
          log.warn(
            { error_code: 'PAYLOAD_TOO_LARGE', topic: name, count: plan.oversized.length },
            'Dead-lettered records over kafka.max_message_bytes.',
          )
        }
      })(),
    )
  }

  const subscribe = async <T>(
    topic: Topic<T>,
    group: string,
    handle: (batch: readonly DeliveredRecord<T>[]) => Promise<Handled>,
    options: SubscribeOptions = {},
  ) => {
    refuseIfClosed()
    const name = kafkaTopicName(config, topic)
    await ensureTopic(name)
    const decode: Decode<DeliveredRecord<T>> = (message, partition) => {
      if (message.value === null) return undefined
      try {
        const text = message.value.toString('utf8')
        const parsed = JSON.parse(text) as T
        const value = options.encoded ? (text as T) : parsed
        return { key: message.key?.toString('utf8') ?? '', value, partition, offset: Number(message.offset) }
      } catch {
        return undefined
      }
    }
    return consume(consumerDeps, name, group, decode, handle, options)
  }

  const subscribeRaw = async (
    topicName: string,
    group: string,
    handle: (batch: readonly RawRecord[]) => Promise<void>,
    options: RawSubscribeOptions = {},
  ) => {
    refuseIfClosed()
    await ensureTopic(topicName, { create: false })
    const decode: Decode<RawRecord> = (message, partition) => ({
      key: message.key?.toString('utf8') ?? null,
      value: message.value ?? Buffer.alloc(0),
      partition,
      offset: Number(message.offset),
      timestamp: Number(message.timestamp),
    })
    return consume(consumerDeps, topicName, group, decode, handle, options)
  }

  const openKeyValueLog = async <T>(topic: Topic<unknown>): Promise<KeyValueLog<T>> => {
    refuseIfClosed()
    const name = kafkaTopicName(config, topic)
    await ensureTopic(name, { compacted: true })
    const table = createKeyValueTable<T>({
      name,
      write: (records) => track(send(name, records)),
      ends: async () => {
        const offsets = await admin.fetchTopicOffsets(name).catch((err: unknown) => {
          throw busError(err, `offsets of ${name}`)
        })
        return offsets.map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }))
      },
      now,
      catchUpTimeoutMs: kvCatchUpTimeoutMs,
      onSize: (entries) => telemetry.keyValueEntries(name, entries),
    })
    // A group of its own that never commits: every open reads the whole compacted topic.
    const reader = await consume<LogRecord>(
      consumerDeps,
      name,
      `${config.client_id}.kv.${randomUUID()}`,
      (message, partition) => ({
        key: message.key?.toString('utf8') ?? null,
        value: message.value,
        partition,
        offset: Number(message.offset),
      }),
      async (records) => table.apply(records),
      { fromBeginning: true },
    )
    return {
      get: (key) => {
        refuseIfClosed()
        return table.get(key)
      },
      put: (key, value) => {
        refuseIfClosed()
        return table.put(key, value)
      },
      putMany: (values) => {
        refuseIfClosed()
        return table.putMany(values)
      },
      scan: (prefix) => {
        refuseIfClosed()
        return table.scan(prefix)
      },
      close: () => reader.stop(),
    }
  }

  const close = async () => {
    if (closed) return
    closed = true
    await Promise.allSettled([...subscriptions].map((s) => s.stop()))
    await Promise.allSettled([...inFlight])
    await Promise.allSettled([producer.disconnect(), admin.disconnect()])
    log.info({}, 'Kafka bus closed.')
  }

  const readiness = () => {
    if (closed) return { ok: false, detail: 'closed' }
    const restoring = [...subscriptions].reduce((sum, s) => sum + s.restoring(), 0)
    return restoring > 0 ? { ok: false, detail: `restoring ${restoring} partitions` } : { ok: true }
  }

  return {
    publish,
    subscribe,
    subscribeRaw,
    openKeyValueLog,
    partitionsOf: (topic) => partitions.get(kafkaTopicName(config, topic)) ?? config.partitions,
    close,
    readiness,
  }
}

/** kafkajs logs through pino: its ERROR lines are mostly retried network trouble, so they become warn. */
function pinoLogCreator(log: Logger) {
  return () =>
    ({ level, namespace, log: entry }: LogEntry) => {
      const { message, timestamp: _timestamp, logger: _logger, ...fields } = entry
      const text = `kafkajs ${namespace}: ${message}`
      if (level <= logLevel.WARN) log.warn(fields, text)
      else if (level === logLevel.INFO) log.debug(fields, text)
      else log.trace(fields, text)
    }
}
