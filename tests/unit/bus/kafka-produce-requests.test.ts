// Publishes on Kafka fit the broker's message size: the plan (pure), then a 5 MiB NDJSON request of real
// Falco alerts posted to /v1/falco on the Kafka bus (the kafkajs double, refusing any partition batch over
// the limit with MESSAGE_TOO_LARGE as a broker does) becomes several produce requests under the limit and is
// accepted whole; a single event over the limit is dead-lettered with the reason; consumers heartbeat while
// a slow handler runs.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createKafkaBus } from '../../../bus/kafka-bus.ts'
import { planProduceRequests, recordBytes } from '../../../bus/kafka-produce-requests.ts'
import { deadLetterTopic, eventsTopic } from '../../../bus/topics.ts'
import { startIngest } from '../../../ingest/start-ingest.ts'
import { createHttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { createKafkaDouble } from './kafka-double.ts'

const limit = 1_048_576
const falco = readFileSync(join(import.meta.dirname, '../../fixtures/falco/falcosidekick.ndjson'), 'utf8')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as Record<string, unknown>)

describe('produce requests under the message size', () => {
  it('cut each partition into batches under the limit, in order, and set oversized records apart', () => {
    const messages = Array.from({ length: 40 }, (_, i) => ({
      key: `agent-${i % 3}`,
      value: 'x'.repeat(i === 7 ? 200_000 : 30_000),
    }))
    const plan = planProduceRequests(messages, (key) => Number(key.slice(-1)), 150_000)
    expect(plan.oversized).toEqual([{ index: 7, bytes: recordBytes(messages[7] as (typeof messages)[0]) }])
    for (const request of plan.requests) {
      for (const p of [0, 1, 2]) {
        const bytes = request.filter((m) => m.key === `agent-${p}`).reduce((n, m) => n + recordBytes(m), 0)
        expect(bytes).toBeLessThanOrEqual(150_000)
      }
    }
    const sent = plan.requests.flat()
    expect(sent).toHaveLength(39)
    for (const p of [0, 1, 2]) {
      const inOrder = messages.filter((m, i) => i !== 7 && m.key === `agent-${p}`)
      expect(sent.filter((m) => m.key === `agent-${p}`)).toEqual(inOrder)
    }
  })

  it('turn a 5 MiB NDJSON request to /v1/falco into several produce requests a broker accepts', async () => {
    const rt = createTestRuntime({ level: 'info' })
    const double = createKafkaDouble()
    double.setMaxBatchBytes(limit)
    const base = loadConfig({
      env: { NERVE_DATA_DIR: tempDir('nerve-kafka-split'), NERVE_KAFKA_BROKERS: 'double:9092' },
    })
    const config: Config = {
      ...base,
      http: { ...base.http, body_limit_bytes: 8 * 1024 * 1024, max_items: 100_000 },
      // Every alert on the bus: 7 pods' thousands of alerts would mostly fold over the edge budget.
      ingest: { ...base.ingest, agent_budget: { alerts_per_rule_per_minute: 0 } },
      kafka: { ...base.kafka, partitions: 3, max_message_bytes: limit },
    }
    const bus = await createKafkaBus(config.kafka, { ...rt, createClient: double.createClient })
    const ingest = await startIngest(config, { bus, log: rt.log, metrics: rt.metrics, now: Date.now })
    const token = 'nrv_kafka-split-test-token-0123'
    const server = createHttpServer(config.http, { log: rt.log, metrics: rt.metrics, ingestToken: token })
    server.addRoutes(ingest.routes)

    // Real alerts, made distinct (one agent per pod, so every partition gets its share) until 5 MiB.
    const lines: string[] = []
    let bytes = 0
    for (let i = 0; bytes < 5 * 1024 * 1024; i++) {
      const alert = falco[i % falco.length] as Record<string, unknown>
      const fields = {
        ...(alert.output_fields as Record<string, unknown>),
        'k8s.pod.name': `worker-${i % 7}`,
      }
      const line = JSON.stringify({ ...alert, output_fields: fields, output: `${alert.output} #${i}` })
      lines.push(line)
      bytes += line.length + 1
    }
    const res = await server.inject({
      method: 'POST',
      url: '/v1/falco',
      payload: lines.join('\n'),
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
    })
    expect(res.statusCode).toBe(202)
    expect(res.json().accepted).toBe(lines.length)

    const requests = double.produced.filter((p) => p.topic === 'nerve.events.v1')
    expect(requests.length).toBeGreaterThan(5)
    for (const r of requests) for (const b of r.batchBytes.values()) expect(b).toBeLessThanOrEqual(limit)
    const stored = double.log('nerve.events.v1').reduce((n, p) => n + p.length, 0)
    expect(stored).toBe(lines.length)
    await ingest.close()
    await bus.close()
  })

  it('dead-letter a single record over the limit with the reason, and publish the rest', async () => {
    const rt = createTestRuntime({ level: 'info' })
    const double = createKafkaDouble()
    double.setMaxBatchBytes(65_536)
    const base = loadConfig({ env: { NERVE_KAFKA_BROKERS: 'double:9092' } }).kafka
    const bus = await createKafkaBus(
      { ...base, partitions: 2, max_message_bytes: 65_536 },
      { ...rt, createClient: double.createClient },
    )
    await bus.publish(eventsTopic, [
      { key: 'a', value: { note: 'small' } as never },
      { key: 'a', value: { note: 'y'.repeat(100_000) } as never },
      { key: 'b', value: { note: 'small too' } as never },
    ])
    expect(double.log('nerve.events.v1').flat()).toHaveLength(2)
    const [letter] = double.log('nerve.dead-letter.v1').flat()
    const dead = JSON.parse(letter?.value?.toString() ?? '{}')
    expect(dead).toMatchObject({ component: 'kafka_bus', error_code: 'PAYLOAD_TOO_LARGE' })
    expect(dead.reason).toMatch(
      /record of \d+ bytes for nerve\.events\.v1 is over kafka\.max_message_bytes \(65536\)/,
    )
    expect(dead.original.length).toBe(16_384)
    expect(
      await rt.metricValue('nerve_component_discarded_events_total', {
        component: 'kafka_bus',
        reason: 'too_large',
      }),
    ).toBe(1)
    expect(deadLetterTopic.name).toBe('nerve.dead-letter.v1')
    await bus.close()
  })

  it('keep heartbeating while a handler runs longer than a heartbeat interval', async () => {
    const double = createKafkaDouble()
    const base = loadConfig({ env: { NERVE_KAFKA_BROKERS: 'double:9092' } }).kafka
    const bus = await createKafkaBus(
      { ...base, partitions: 1, session_timeout: 6_000 },
      { ...createTestRuntime(), createClient: double.createClient },
    )
    await bus.publish(eventsTopic, [{ key: 'a', value: { slow: true } as never }])
    let handled = false
    const sub = await bus.subscribe(eventsTopic, 'slow-group', async () => {
      await new Promise((r) => setTimeout(r, 4_500))
      handled = true
    })
    await waitFor(() => handled, { timeoutMs: 10_000, what: 'the slow batch' })
    const consumer = double.consumers.find((c) => c.options.groupId === 'slow-group')
    expect(consumer?.options).toMatchObject({ sessionTimeout: 6_000, heartbeatInterval: 2_000 })
    expect(consumer?.heartbeats).toBeGreaterThanOrEqual(2)
    await sub.stop()
    await bus.close()
  })
})
