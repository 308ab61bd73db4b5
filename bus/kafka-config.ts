// config.kafka → the options kafkajs takes (client, producer, topics), as plain data so it is tested without
// a broker. kafka-bus.ts hands these to kafkajs; this file never imports it.
import { readFileSync } from 'node:fs'
import { NerveError } from '../runtime/errors.ts'
import type { KafkaConfig } from '../schemas/types.ts'
import type { Topic } from './bus.ts'
import {
  correlationsTopic,
  correlatorStateTopic,
  deadLetterTopic,
  eventsTopic,
  identityLinksTopic,
  lateEventsTopic,
  revokeOutcomesTopic,
} from './topics.ts'

/** Capped, jittered exponential backoff (kafkajs's retry shape): delay n ≈ min(max, initial·multiplier^n) ± factor. */
export type RetryPolicy = {
  initialRetryTime: number
  maxRetryTime: number
  retries: number
  multiplier: number
  factor: number
}

/** Bounded so that a publish to an unreachable cluster fails (retriable) in about half a minute, not never. */
export const retryPolicy: RetryPolicy = {
  initialRetryTime: 300,
  maxRetryTime: 10_000,
  retries: 8,
  multiplier: 2,
  factor: 0.2,
}

/** A refused batch is handed over again after this backoff, for as long as the subscription runs. */
export const handlerRetryPolicy: RetryPolicy = {
  initialRetryTime: 100,
  maxRetryTime: 10_000,
  retries: Number.POSITIVE_INFINITY,
  multiplier: 2,
  factor: 0.2,
}

export type TlsOptions = { ca?: Buffer[]; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean }
type Credentials = { username: string; password: string }
export type SaslOptions =
  | ({ mechanism: 'plain' } & Credentials)
  | ({ mechanism: 'scram-sha-256' } & Credentials)
  | ({ mechanism: 'scram-sha-512' } & Credentials)

export type KafkaClientOptions = {
  clientId: string
  brokers: string[]
  ssl?: true | TlsOptions
  sasl?: SaslOptions
  connectionTimeout: number
  requestTimeout: number
  retry: RetryPolicy
}

export type ProducerOptions = {
  idempotent: true
  /** KIP-98: idempotence keeps order only with one request in flight per connection. */
  maxInFlightRequests: 1
  allowAutoTopicCreation: false
  retry: RetryPolicy
}

type ReadFile = (path: string) => Buffer

const readFile: ReadFile = (path) => readFileSync(path)

/** Client options; reads the TLS files named in the config (a missing file is CONFIG_INVALID, said once). */
export function kafkaClientOptions(config: KafkaConfig, read: ReadFile = readFile): KafkaClientOptions {
  if (config.brokers.length === 0) {
    throw new NerveError(
      'CONFIG_INVALID',
      'kafka.brokers is empty: set NERVE_KAFKA_BROKERS or kafka.brokers.',
    )
  }
  const ssl = config.ssl ? tlsOptions(config.ssl, read) : undefined
  return {
    clientId: config.client_id,
    brokers: [...config.brokers],
    ...(ssl ? { ssl } : {}),
    ...(config.sasl ? { sasl: saslOptions(config.sasl) } : {}),
    connectionTimeout: 10_000,
    requestTimeout: 30_000,
    retry: retryPolicy,
  }
}

function saslOptions({ mechanism, username, password }: NonNullable<KafkaConfig['sasl']>): SaslOptions {
  if (mechanism === 'plain') return { mechanism, username, password }
  if (mechanism === 'scram-sha-256') return { mechanism, username, password }
  return { mechanism, username, password }
}

function tlsOptions(ssl: NonNullable<KafkaConfig['ssl']>, read: ReadFile): true | TlsOptions {
  if (Boolean(ssl.cert_file) !== Boolean(ssl.key_file)) {
    throw new NerveError(
      'CONFIG_INVALID',
      'kafka.ssl: cert_file and key_file go together (a client certificate).',
    )
  }
  const file = (key: string, path: string | undefined) => {
    if (!path) return undefined
    try {
      return read(path)
    } catch (err) {
      throw new NerveError('CONFIG_INVALID', `kafka.ssl.${key}: cannot read ${path}.`, { cause: err })
    }
  }
  const ca = file('ca_file', ssl.ca_file)
  const cert = file('cert_file', ssl.cert_file)
  const key = file('key_file', ssl.key_file)
  const rejectUnauthorized = ssl.reject_unauthorized ?? true
  if (!ca && !cert && rejectUnauthorized) return true
  return {
    ...(ca ? { ca: [ca] } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    rejectUnauthorized,
  }
}

export const producerOptions: ProducerOptions = {
  idempotent: true,
  maxInFlightRequests: 1,
  allowAutoTopicCreation: false,
  retry: retryPolicy,
}

/** acks=all: a publish resolves only once every in-sync replica has the records. */
export const requiredAcks = -1

/** The Kafka topic a nerve topic lives in. */
export const kafkaTopicName = (config: Pick<KafkaConfig, 'topic_prefix'>, topic: Topic<unknown>): string =>
  `${config.topic_prefix}${topic.name}`

export type TopicSpec = {
  topic: string
  numPartitions: number
  replicationFactor: number
  configEntries: { name: string; value: string }[]
}

/** Compacted topics keep the latest value per key (checkpoints, shared maps); values may be large states. */
const compactedEntries = [
  { name: 'cleanup.policy', value: 'compact' },
  { name: 'max.message.bytes', value: String(16 * 1024 * 1024) },
]

/**
 * How long the shared identity links topic keeps a link. It is compacted (the copies of one link that
 * several instances publish shrink to one) and deleted after this too: every access key id is new, so
 * compaction alone would keep every link ever learned. A link is of use for its credentials' lifetime
 * (at most 12 h), and each instance's links file keeps it a day past that.
 */
export const identityLinksRetentionMs = 2 * 24 * 3_600_000

export function topicSpec(
  config: Pick<KafkaConfig, 'partitions' | 'replication_factor' | 'max_message_bytes'>,
  name: string,
  opts: { compacted?: boolean; retentionMs?: number } = {},
): TopicSpec {
  // The stream topics take what the producer is allowed to send them (it splits publishes to fit).
  const streamEntries = [{ name: 'max.message.bytes', value: String(config.max_message_bytes) }]
  return {
    topic: name,
    numPartitions: config.partitions,
    replicationFactor: config.replication_factor,
    configEntries:
      opts.compacted && opts.retentionMs !== undefined
        ? [
            { name: 'cleanup.policy', value: 'compact,delete' },
            { name: 'retention.ms', value: String(opts.retentionMs) },
            ...streamEntries,
          ]
        : opts.compacted
          ? compactedEntries
          : streamEntries,
  }
}

/** Consumer group timing: heartbeats every 3 s, also while a batch is handled (kafka-bus.ts). */
export function consumerTiming(config: Pick<KafkaConfig, 'session_timeout'>) {
  const sessionTimeout = Math.max(6_000, config.session_timeout)
  return {
    sessionTimeout,
    heartbeatInterval: Math.min(3_000, Math.floor(sessionTimeout / 3)),
    rebalanceTimeout: Math.max(60_000, sessionTimeout),
  }
}

/** Every topic nerve's stages use, created on start when kafka.create_topics is on. */
export function nerveTopicSpecs(config: KafkaConfig): TopicSpec[] {
  const streams = [eventsTopic, correlationsTopic, deadLetterTopic, lateEventsTopic, revokeOutcomesTopic]
  return [
    ...streams.map((t) => topicSpec(config, kafkaTopicName(config, t))),
    topicSpec(config, kafkaTopicName(config, correlatorStateTopic), { compacted: true }),
    topicSpec(config, kafkaTopicName(config, identityLinksTopic), {
      compacted: true,
      retentionMs: identityLinksRetentionMs,
    }),
  ]
}
