import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  consumerTiming,
  kafkaClientOptions,
  kafkaTopicName,
  nerveTopicSpecs,
  producerOptions,
  requiredAcks,
  topicSpec,
} from '../../../bus/kafka-config.ts'
import { correlatorStateTopic, eventsTopic, identityLinksTopic } from '../../../bus/topics.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { KafkaConfig } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'

const kafka = (yaml: Partial<KafkaConfig> = {}, env: Record<string, string> = {}): KafkaConfig =>
  ({
    ...loadConfig({ env: { NERVE_KAFKA_BROKERS: 'k1:9092,k2:9092', ...env } }).kafka,
    ...yaml,
  }) as KafkaConfig

const files: Record<string, string> = { '/ca.pem': 'CA', '/client.crt': 'CERT', '/client.key': 'KEY' }
const read = (path: string) => {
  const text = files[path]
  if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' })
  return Buffer.from(text)
}

describe('kafkaClientOptions', () => {
  it('takes brokers from NERVE_KAFKA_BROKERS and has plain TCP without ssl or sasl', () => {
    const options = kafkaClientOptions(kafka(), read)
    expect(options).toMatchObject({ clientId: 'nerve', brokers: ['k1:9092', 'k2:9092'] })
    expect(options.ssl).toBeUndefined()
    expect(options.sasl).toBeUndefined()
  })

  it('refuses to start without brokers', () => {
    expect(() => kafkaClientOptions(kafka({ brokers: [] }), read)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    )
  })

  it('maps SASL PLAIN and SCRAM as kafkajs names them', () => {
    for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512'] as const) {
      const sasl = { mechanism, username: 'nerve', password: 'secret' }
      expect(kafkaClientOptions(kafka({ sasl }), read).sasl).toEqual(sasl)
    }
  })

  it('uses the system CAs when ssl is on without files', () => {
    expect(kafkaClientOptions(kafka({ ssl: { reject_unauthorized: true } }), read).ssl).toBe(true)
  })

  it('reads a private CA and a client certificate for mutual TLS', () => {
    const ssl = {
      ca_file: '/ca.pem',
      cert_file: '/client.crt',
      key_file: '/client.key',
      reject_unauthorized: true,
    }
    expect(kafkaClientOptions(kafka({ ssl }), read).ssl).toEqual({
      ca: [Buffer.from('CA')],
      cert: Buffer.from('CERT'),
      key: Buffer.from('KEY'),
      rejectUnauthorized: true,
    })
  })

  it('names the file it cannot read, and a certificate without its key', () => {
    const missing = { ca_file: '/nope.pem', reject_unauthorized: true }
    expect(() => kafkaClientOptions(kafka({ ssl: missing }), read)).toThrow(
      /kafka\.ssl\.ca_file: cannot read \/nope\.pem/,
    )
    const halfPair = { cert_file: '/client.crt', reject_unauthorized: true }
    expect(() => kafkaClientOptions(kafka({ ssl: halfPair }), read)).toThrow(
      /cert_file and key_file go together/,
    )
  })

  it('can turn certificate checks off, for a test cluster', () => {
    expect(kafkaClientOptions(kafka({ ssl: { reject_unauthorized: false } }), read).ssl).toEqual({
      rejectUnauthorized: false,
    })
  })
})

describe('producer', () => {
  it('is idempotent with acks=all and one request in flight, and never creates topics by itself', () => {
    expect(producerOptions).toMatchObject({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    })
    expect(requiredAcks).toBe(-1)
  })
})

describe('topics', () => {
  it('prefixes every topic name', () => {
    expect(kafkaTopicName({ topic_prefix: 'prod.' }, eventsTopic)).toBe('prod.nerve.events.v1')
    expect(kafkaTopicName({ topic_prefix: '' }, eventsTopic)).toBe('nerve.events.v1')
  })

  it('creates the stream topics, the compacted correlator state topic and the links topic with the configured layout', () => {
    const specs = nerveTopicSpecs(kafka({ topic_prefix: 'p.', partitions: 24, replication_factor: 3 }))
    expect(specs.map((s) => s.topic)).toEqual([
      'p.nerve.events.v1',
      'p.nerve.correlations.v1',
      'p.nerve.dead-letter.v1',
      'p.nerve.late-events.v1',
      'p.nerve.revoke-outcomes.v1',
      `p.${correlatorStateTopic.name}`,
      `p.${identityLinksTopic.name}`,
    ])
    expect(specs.every((s) => s.numPartitions === 24 && s.replicationFactor === 3)).toBe(true)
    const policies = specs.map((s) => [
      s.topic,
      s.configEntries.find((e) => e.name === 'cleanup.policy')?.value,
    ])
    expect(policies.filter(([, policy]) => policy !== undefined)).toEqual([
      [`p.${correlatorStateTopic.name}`, 'compact'],
      // One link per access key id, and none kept past two days (every key id is new).
      [`p.${identityLinksTopic.name}`, 'compact,delete'],
    ])
  })

  it('leaves stream topics on the cluster’s retention, with the message size the producer splits to', () => {
    expect(topicSpec(kafka(), 't').configEntries).toEqual([{ name: 'max.message.bytes', value: '1048576' }])
    expect(topicSpec({ ...kafka(), max_message_bytes: 4_194_304 }, 't').configEntries).toEqual([
      { name: 'max.message.bytes', value: '4194304' },
    ])
  })

  it('heartbeats often enough for the session timeout, and lets a rebalance wait a minute', () => {
    expect(consumerTiming(kafka())).toEqual({
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      rebalanceTimeout: 60_000,
    })
    expect(consumerTiming({ session_timeout: 6_000 })).toMatchObject({ heartbeatInterval: 2_000 })
  })
})

describe('config schema', () => {
  it('has defaults for every Kafka key', () => {
    expect(kafka()).toMatchObject({
      client_id: 'nerve',
      topic_prefix: '',
      create_topics: true,
      partitions: 12,
      replication_factor: 1,
      compression: 'gzip',
      cloudtrail_topics: [],
      cloudtrail_group: 'nerve-cloudtrail-reader',
    })
  })
})

describe('config validation of the kafka section', () => {
  it('names every bad Kafka key at once', () => {
    const dir = tempDir()
    const file = join(dir, 'nerve.yaml')
    writeFileSync(
      file,
      [
        'kafka:',
        '  brokers: [""]',
        '  partitions: 0',
        '  compression: snappy',
        '  sasl: { mechanism: gssapi, username: u }',
        '  ssl: { cert: /x }',
      ].join('\n'),
    )
    let message = ''
    try {
      loadConfig({ file })
    } catch (err) {
      message = (err as Error).message
    }
    for (const path of [
      '/kafka/brokers/0',
      '/kafka/partitions',
      '/kafka/compression',
      '/kafka/sasl',
      '/kafka/ssl',
    ]) {
      expect(message).toContain(path)
    }
  })
})
