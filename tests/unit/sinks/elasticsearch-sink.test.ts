// The Elasticsearch sink on a bus (in memory) and a loopback Elasticsearch: what it subscribes to, rejected
// items on the dead-letter topic with their key and reason, and a batch handed back during an outage
// delivered again until it is indexed, never dead-lettered.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { DeadLetter } from '../../../bus/topics.ts'
import { correlationsTopic, deadLetterTopic, eventsTopic, revokeOutcomesTopic } from '../../../bus/topics.ts'
import type { ElasticsearchConfig } from '../../../schemas/types.ts'
import { type ElasticsearchSink, startElasticsearchSink } from '../../../sinks/elasticsearch-sink.ts'
import { createTestRuntime, type TestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { correlation, events, revokeOutcomes } from './ecs-sample-events.ts'
import { type FakeElasticsearch, startFakeElasticsearch } from './elasticsearch-fake-server.ts'
import { createMemoryBus, type MemoryBus } from './memory-bus.ts'

let es: FakeElasticsearch
let bus: MemoryBus
let rt: TestRuntime
let sink: ElasticsearchSink | undefined

beforeEach(async () => {
  es = await startFakeElasticsearch()
  bus = createMemoryBus()
  rt = createTestRuntime()
})
afterEach(async () => {
  await sink?.close()
  sink = undefined
  await bus.close()
  await es.close()
})

const start = (overrides: Partial<ElasticsearchConfig> = {}) =>
  startElasticsearchSink(
    { url: es.url, namespace: 'default', index_events: true, max_retries: 1, ...overrides },
    { bus, log: rt.log, metrics: rt.metrics, now: () => 1_700_000_000_000, sleep: async () => {} },
  )

const publishAll = async () => {
  await bus.publish(
    eventsTopic,
    events.map((value) => ({ key: value.agent.id, value })),
  )
  await bus.publish(correlationsTopic, [{ key: correlation.agent.id, value: correlation }])
  await bus.publish(
    revokeOutcomesTopic,
    revokeOutcomes.map((value) => ({ key: value.agent_id, value })),
  )
}

describe('elasticsearch sink', () => {
  it('indexes events, correlations and revoke outcomes from the bus', async () => {
    sink = await start()
    await publishAll()
    const total = events.length + 1 + revokeOutcomes.length
    await waitFor(() => es.documents.size === total, { what: 'every document indexed' })
    expect(sink.readiness()).toEqual({ ok: true })
    expect(bus.published(deadLetterTopic)).toEqual([])
  })

  it('subscribes to events only with index_events', async () => {
    sink = await start({ index_events: false })
    await publishAll()
    await waitFor(() => es.documents.size === 1 + revokeOutcomes.length, {
      what: 'correlations and outcomes',
    })
    expect([...es.documents.keys()].some((k) => k.startsWith('logs-nerve.events'))).toBe(false)
  })

  it('dead-letters the items Elasticsearch rejects, keyed by agent, and commits the batch', async () => {
    const rejectedId = events[2]?.id as string
    es.script.push((req) =>
      req.path.startsWith('/_bulk') && req.body.includes(`"_id":"${rejectedId}"`)
        ? {
            status: 200,
            body: {
              errors: true,
              items: req.body
                .split('\n')
                .filter((_, i) => i % 2 === 0)
                .filter(Boolean)
                .map((line) =>
                  line.includes(rejectedId)
                    ? {
                        create: { status: 400, error: { type: 'document_parsing_exception', reason: 'bad' } },
                      }
                    : { create: { status: 201 } },
                ),
            },
          }
        : undefined,
    )
    sink = await start()
    const keys: string[] = []
    await bus.subscribe(deadLetterTopic, 'test', async (batch) => void keys.push(...batch.map((r) => r.key)))
    await bus.publish(
      eventsTopic,
      events.map((value) => ({ key: value.agent.id, value })),
    )
    await waitFor(() => keys.length > 0, { what: 'a dead letter' })
    expect(keys).toEqual([events[2]?.agent.id])
    const letters = bus.published<DeadLetter>(deadLetterTopic)
    expect(letters).toHaveLength(1)
    expect(letters[0]).toMatchObject({
      component: 'elasticsearch_indexer',
      error_code: 'SINK_REJECTED',
      index: 2,
      received_at: 1_700_000_000_000,
    })
    expect(letters[0]?.reason).toContain('document_parsing_exception: bad')
    expect(JSON.parse(letters[0]?.original ?? '')).toMatchObject({ id: rejectedId })
    expect(es.bulkRequests()).toHaveLength(1)
  })

  it('hands a batch back during an outage and indexes it once Elasticsearch answers again', async () => {
    let outage = 3
    es.script.push((req) =>
      req.path.startsWith('/_bulk') && outage-- > 0
        ? { status: 503, body: { error: { type: 'unavailable' } } }
        : undefined,
    )
    sink = await start()
    await bus.publish(correlationsTopic, [{ key: correlation.agent.id, value: correlation }])
    // The fake server stores the document before the sink has read the answer: wait for both.
    await waitFor(() => es.documents.size === 1 && sink?.readiness().ok, {
      what: 'the correlation indexed after the outage, and the sink ready again',
    })
    expect(es.bulkRequests().length).toBe(4)
    expect(bus.published(deadLetterTopic)).toEqual([])
    expect(sink.readiness()).toEqual({ ok: true })
  })
})
