// The Kafka bus: the only file that imports kafkajs (in maintenance mode, so it stays fenced here).
// - publish: JSON values keyed by agent id, Kafka's default murmur2 partitioner (kafka-partitioner.ts), an
//   idempotent producer with acks=all; resolves once the in-sync replicas have the records. A publish is
//   split so that no partition's batch in one produce request exceeds max_message_bytes (MESSAGE_TOO_LARGE
//   is not retriable); a single record over it is dead-lettered with the reason (kafka-produce-requests.ts).
// - subscribe: one kafkajs consumer per (topic, group), eachBatch with autoCommit off; records are handed
//   over in chunks of maxBatch, and an offset is resolved and committed only after handle() resolved (up
//   to the bound it resolved with, if any: the fetch position moves on, the group's commit stays there). A
//   refused chunk is handed over again after a capped, jittered backoff (from the partition's last commit,
//   by a seek, when the handler held commits back); heartbeats go on meanwhile and
//   while the handler runs (an Elasticsearch retry can take minutes), so the member keeps its partitions; if
//   the partition moves away first, the new owner reads it again from the last commit (at-least-once).
// - rebalances: onAssign/onRevoke (partition-ownership.ts); a partition's batches wait for its onAssign.
//   Subscription.owns is false while the member may be out of its group, evicted included
//   (kafka-group-membership.ts); a member that joins again as a new one restores its partitions again.
// - subscribeRaw: an external topic of raw bytes (CloudTrail that another shipper writes to Kafka).
// - openKeyValueLog: latest value per key over a compacted topic (checkpoints, shared identity links).
// Errors become NerveError BUS_UNAVAILABLE with kafkajs's own `retriable` decision (kafka-retry.ts).
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  CompressionTypes,
  type Consumer,
  type EachBatchPayload,
  Kafka,
  type KafkaMessage,
  type LogEntry,
  logLevel,
} from 'kafkajs'
import { errorCodeOf, NerveError } from '../runtime/errors.ts'
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
  consumerTiming,
  handlerRetryPolicy,
  kafkaClientOptions,
  kafkaTopicName,
  nerveTopicSpecs,
  producerOptions,
  requiredAcks,
  retryPolicy,
  topicSpec,
} from './kafka-config.ts'
import { createGroupMembership } from './kafka-group-membership.ts'
import { createKeyValueTable, type LogRecord } from './kafka-key-value-log.ts'
import { partitionForKey } from './kafka-partitioner.ts'
import { planProduceRequests } from './kafka-produce-requests.ts'
import { backoffDelay, busError } from './kafka-retry.ts'
import { createKafkaTelemetry } from './kafka-telemetry.ts'
import { createPartitionOwnership } from './partition-ownership.ts'
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

export type RawSubscribeOptions = SubscribeOptions & {
  /** Where a group with no committed offset starts: the earliest retained record (default) or new ones only. */
  fromBeginning?: boolean
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
  const subscriptions = new Set<{ stop(): Promise<void>; restoring(): number }>()
  const inFlight = new Set<Promise<unknown>>()
  let closed = false

  const ensureTopic = (name: string, opts: { compacted?: boolean; create?: boolean } = {}) => {
    let done = ensured.get(name)
    if (!done) {
      done = (async () => {
        if (config.create_topics && opts.create !== false) {
          await admin.createTopics({ topics: [topicSpec(config, name, opts)], waitForLeaders: true })
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

  type Decode<R> = (message: KafkaMessage, partition: number) => R | undefined

  async function consume<R>(
    name: string,
    group: string,
    decode: Decode<R>,
    handle: (batch: readonly R[]) => Promise<Handled>,
    options: RawSubscribeOptions,
  ): Promise<Subscription> {
    const maxBatch = Math.max(1, options.maxBatch ?? 500)
    const where = { topic: name, group }
    const ownership = createPartitionOwnership(
      options,
      {
        restored: (parts, ms, failed) => {
          telemetry.restored(group, ms)
          // A failure is counted and logged where it is retried (stage "restore").
          if (!failed) log.info({ ...where, partitions: parts, ms }, 'Partitions restored.')
        },
        revokeFailed: (parts, err) => {
          telemetry.component.error(errorCodeOf(err), 'revoke', parts.length)
          log.warn({ ...where, partitions: parts, err }, 'onRevoke failed.')
        },
      },
      now,
    )
    const timing = consumerTiming(config)
    const consumer: Consumer = kafka.consumer({
      groupId: group,
      retry: retryPolicy,
      allowAutoTopicCreation: false,
      ...timing,
    })
    /** Per partition owned, the last commit this member made (or kept, while its handler held back). */
    const allowed = new Map<number, number>()
    /** Partitions whose handler last resolved with a bound short of its chunk: records wait uncommitted. */
    const holding = new Set<number>()
    // While this member is not surely in the group (a rebalance began, it was evicted, or it may have
    // been), none of its partitions is surely its own: another member may be given any of them.
    const membership = createGroupMembership(timing.sessionTimeout, now)
    consumer.on(consumer.events.REBALANCING, () => membership.left())
    consumer.on(consumer.events.REQUEST, ({ payload }) =>
      membership.answered(payload.apiName, payload.duration),
    )
    consumer.on(consumer.events.HEARTBEAT, () => membership.heartbeat())
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const renewed = membership.joined(payload.memberId)
      const assigned = payload.memberAssignment[name] ?? []
      // A new membership keeps nothing: the group may have moved its partitions meanwhile.
      const kept = renewed ? [] : assigned
      for (const p of allowed.keys()) if (!kept.includes(p)) allowed.delete(p)
      for (const p of holding) if (!kept.includes(p)) holding.delete(p)
      telemetry.rebalanced(where, assigned.length)
      for (const p of ownership.owned()) if (!assigned.includes(p)) telemetry.forget(where, p)
      if (renewed) ownership.assign([])
      ownership.assign(assigned)
      log.info({ ...where, partitions: assigned, rejoined: renewed }, 'Joined the consumer group.')
    })
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      // A crashed consumer rejoins (or stops): until a GROUP_JOIN says what it owns, it owns nothing.
      membership.left()
      telemetry.component.error('BUS_UNAVAILABLE', 'consume')
      log.warn({ ...where, restart: payload.restart, err: payload.error }, 'Consumer crashed.')
    })

    let stopping = false
    const batches = new Set<Promise<void>>()
    const running = (payload: EachBatchPayload) => !stopping && payload.isRunning() && !payload.isStale()

    /** A call to the group coordinator; an answer saying this member is gone ends its membership. */
    const toGroup = async (call: () => Promise<void>) => {
      try {
        await call()
      } catch (err) {
        if (membership.failed(err)) {
          log.info(
            { ...where, err },
            'The group answered that this member must join again; it owns nothing until it has.',
          )
        }
        throw err
      }
    }

    /** Waits `ms` in slices, heartbeating; false when the subscription stops or the partition moves. */
    const pause = async (ms: number, payload: EachBatchPayload) => {
      const until = now() + ms
      while (now() < until) {
        if (!running(payload)) return false
        await sleep(Math.min(200, until - now()))
        await toGroup(() => payload.heartbeat())
      }
      return running(payload)
    }

    /** Heartbeats while `work` runs: a handler may take longer than the session timeout. */
    const heartbeating = async (work: () => Promise<void>, payload: EachBatchPayload) => {
      const timer = setInterval(() => {
        toGroup(() => payload.heartbeat()).catch((err: unknown) => {
          log.debug({ ...where, err }, 'Heartbeat during a batch failed.')
        })
      }, timing.heartbeatInterval)
      try {
        await work()
      } finally {
        clearInterval(timer)
      }
    }

    /**
     * Runs `work` until it resolves; false when stopped first, or when `rewind` after a failure moved the
     * partition back (the batch is abandoned and fetched again from there).
     */
    const untilDone = async (
      work: () => Promise<void>,
      stage: string,
      payload: EachBatchPayload,
      rewind?: () => boolean,
    ) => {
      const partition = payload.batch.partition
      for (let attempt = 1; ; attempt++) {
        if (!running(payload)) return false
        try {
          await heartbeating(work, payload)
          return true
        } catch (err) {
          const code = errorCodeOf(err)
          const delay = backoffDelay(attempt - 1, handlerRetryPolicy, random)
          telemetry.component.error(code, stage)
          log.warn(
            { error_code: code, stage, ...where, partition, attempt, retry_in_ms: delay, err },
            'Batch refused; handing it over again.',
          )
          if (!(await pause(delay, payload))) return false
          if (rewind?.()) return false
        }
      }
    }

    const processBatch = async (payload: EachBatchPayload) => {
      const { batch } = payload
      const partition = batch.partition
      if (!(await untilDone(() => ownership.ready(partition), 'restore', payload))) return
      for (let i = 0; i < batch.messages.length; i += maxBatch) {
        const chunk = batch.messages.slice(i, i + maxBatch)
        const records: R[] = []
        for (const message of chunk) {
          const record = decode(message, partition)
          if (record !== undefined) records.push(record)
          else {
            telemetry.component.discarded(1, 'undecodable')
            log.error(
              { ...where, partition, offset: message.offset },
              'Dropped a record that is not valid JSON.',
            )
          }
        }
        const first = Number(chunk[0]?.offset)
        /** Records before this chunk were handled but not committed: they come again with it (a seek). */
        const rewind = () => {
          const from = allowed.get(partition)
          if (from === undefined || from >= first) return false
          consumer.seek({ topic: name, partition, offset: String(from) })
          return true
        }
        const result: { handled: Handled } = { handled: undefined }
        const work = async () => {
          result.handled = await handle(records)
        }
        if (records.length > 0 && !(await untilDone(work, 'handle', payload, rewind))) return
        const last = chunk[chunk.length - 1]
        if (!last) return
        payload.resolveOffset(last.offset)
        const next = Number(last.offset) + 1
        if (records.length > 0) {
          if (result.handled && result.handled.commit < next) holding.add(partition)
          else holding.delete(partition)
        }
        // A chunk with nothing to hand over (undecodable) commits nothing past records held back before it.
        const bound = result.handled
          ? Math.min(next, result.handled.commit)
          : holding.has(partition)
            ? undefined
            : next
        const commit = bound === undefined ? undefined : Math.max(allowed.get(partition) ?? 0, bound)
        // This partition's offset only: uncommittedOffsets() would name every resolved one, past a bound.
        if (commit !== undefined && commit !== allowed.get(partition)) {
          await toGroup(() =>
            payload.commitOffsetsIfNecessary({
              topics: [{ topic: name, partitions: [{ partition, offset: String(commit) }] }],
            }),
          )
          allowed.set(partition, commit)
        }
        telemetry.component.received(records.length)
        telemetry.lag(where, partition, Number(batch.highWatermark) - Number(last.offset) - 1)
        await toGroup(() => payload.heartbeat())
      }
    }

    try {
      await consumer.connect()
      await consumer.subscribe({ topics: [name], fromBeginning: options.fromBeginning ?? true })
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async (payload) => {
          if (stopping) return
          const work = processBatch(payload)
          batches.add(work)
          try {
            await work
          } finally {
            batches.delete(work)
          }
        },
      })
    } catch (err) {
      await consumer.disconnect().catch(() => undefined)
      throw busError(err, `subscribe to ${name}`)
    }

    let stopped: Promise<void> | undefined
    const subscription = {
      restoring: () => ownership.restoring(),
      owns: (partition: number) => membership.current() && ownership.owns(partition),
      stop: () => {
        stopped ??= (async () => {
          stopping = true
          // The in-flight batch finishes and commits while this member still belongs to the group.
          await Promise.allSettled([...batches])
          await consumer.stop()
          await consumer.disconnect()
          for (const p of ownership.owned()) telemetry.forget(where, p)
          await ownership.revokeAll()
          subscriptions.delete(subscription)
        })()
        return stopped
      },
    }
    subscriptions.add(subscription)
    return subscription
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
    return consume(name, group, decode, handle, options)
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
    return consume(topicName, group, decode, handle, options)
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
