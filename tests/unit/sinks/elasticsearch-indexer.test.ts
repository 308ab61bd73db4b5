// The bulk indexer against a loopback Elasticsearch (the real client, real HTTP): per-item 409/429/5xx/400,
// 413 splitting, whole-request 503 and dropped connections, giving up, refused credentials, telemetry.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isNerveError, NerveError } from '../../../runtime/errors.ts'
import type { ElasticsearchConfig } from '../../../schemas/types.ts'
import { backoffMs } from '../../../sinks/elasticsearch-bulk-operations.ts'
import {
  createElasticsearchIndexer,
  type IndexItem,
  toDeadLetters,
  topicsToIndex,
  unindexedForgetMs,
} from '../../../sinks/elasticsearch-indexer.ts'
import { createTestRuntime, type TestRuntime } from '../../helpers/test-runtime.ts'
import { correlation, events, revokeOutcomes } from './ecs-sample-events.ts'
import {
  bulkAnswer,
  type FakeElasticsearch,
  type FakeRequest,
  parseBulk,
  startFakeElasticsearch,
} from './elasticsearch-fake-server.ts'

const component = { component: 'elasticsearch_indexer' }

const batch: IndexItem[] = [
  ...events.map((value): IndexItem => ({ topic: 'events', value })),
  { topic: 'correlations', value: correlation },
  ...revokeOutcomes.slice(0, 2).map((value): IndexItem => ({ topic: 'revoke_outcomes', value })),
]

let es: FakeElasticsearch
let rt: TestRuntime
let delays: number[]

beforeEach(async () => {
  es = await startFakeElasticsearch()
  rt = createTestRuntime()
  delays = []
})
afterEach(() => es.close())

const configFor = (overrides: Partial<ElasticsearchConfig> = {}): ElasticsearchConfig => ({
  url: es.url,
  namespace: 'default',
  index_events: true,
  max_retries: 3,
  ...overrides,
})

function indexer(overrides: Partial<ElasticsearchConfig> = {}) {
  return createElasticsearchIndexer(configFor(overrides), {
    log: rt.log,
    metrics: rt.metrics,
    sleep: async (ms) => void delays.push(ms),
    random: () => 0.5,
  })
}

/** A script step that answers the n-th bulk request (0-based) and passes on every other. */
function onBulk(n: number, answer: (req: FakeRequest) => ReturnType<typeof bulkAnswer>) {
  let seen = 0
  return (req: FakeRequest) => {
    if (!req.path.startsWith('/_bulk')) return undefined
    return seen++ === n ? answer(req) : undefined
  }
}

describe('elasticsearch indexer', () => {
  it('creates every item in its data stream under its deterministic _id', async () => {
    const sink = indexer()
    expect(await sink.writeBatch(batch)).toEqual({ failed: [] })
    const [request] = es.bulkRequests()
    expect(request?.map((p) => p.action)).toEqual([
      ...events.map((e) => ({
        create: { _index: e.core ? 'logs-aws.cloudtrail-default' : 'logs-nerve.events-default', _id: e.id },
      })),
      { create: { _index: 'logs-nerve.correlations-default', _id: correlation.id } },
      ...revokeOutcomes
        .slice(0, 2)
        .map((o) => ({ create: { _index: 'logs-nerve.revokes-default', _id: o.id } })),
    ])
    expect(es.documents.get(`logs-nerve.correlations-default/${correlation.id}`)).toMatchObject({
      event: { kind: 'alert', id: correlation.id },
    })
    const bulk = es.requests.find((r) => r.path.startsWith('/_bulk'))
    expect(bulk?.path).toContain('filter_path=errors')
    expect(bulk?.headers['content-encoding']).toBe('gzip')
    expect(await rt.metricValue('nerve_component_received_events_total', component)).toBe(batch.length)
    expect(await rt.metricValue('nerve_component_sent_events_total', component)).toBe(batch.length)
    expect(sink.checkHealth()).toEqual({ ok: true })
    await sink.close()
  })

  it('sends nothing for an empty batch', async () => {
    expect(await indexer().writeBatch([])).toEqual({ failed: [] })
    expect(es.requests).toEqual([])
  })

  it('counts a 409 on replay as already indexed, not as a failure', async () => {
    const sink = indexer()
    await sink.writeBatch(batch)
    expect(await sink.writeBatch(batch)).toEqual({ failed: [] })
    expect(es.documents.size).toBe(batch.length)
    expect(await rt.metricValue('nerve_elasticsearch_documents_total', { result: 'duplicate' })).toBe(
      batch.length,
    )
    expect(await rt.metricValue('nerve_component_sent_events_total', component)).toBe(2 * batch.length)
    expect(await rt.metricValue('nerve_component_errors_total', component)).toBe(0)
    await sink.close()
  })

  it('retries only the items answered 429 or 5xx, with capped jittered backoff', async () => {
    es.script.push(onBulk(0, () => bulkAnswer([201, 429, 201, 503, 201, 201, 201, 201])))
    const sink = indexer()
    expect(await sink.writeBatch(batch)).toEqual({ failed: [] })
    const [, retried] = es.bulkRequests()
    expect(retried?.map((p) => p.action.create._id)).toEqual([events[1]?.id, events[3]?.id])
    expect(delays).toEqual([backoffMs(0, () => 0.5)])
    expect(await rt.metricValue('nerve_elasticsearch_documents_total', { result: 'retried' })).toBe(2)
    await sink.close()
  })

  it('stamps event.ingested when each document is written, retries included', async () => {
    es.script.push(onBulk(0, () => bulkAnswer([201, 429, 201, 201, 201, 201, 201, 201])))
    let clock = Date.UTC(2026, 0, 1)
    const sink = createElasticsearchIndexer(configFor({}), {
      log: rt.log,
      metrics: rt.metrics,
      now: () => (clock += 1000),
      sleep: async () => undefined,
      random: () => 0.5,
    })
    await sink.writeBatch(batch)
    const [first, retried] = es.bulkRequests()
    const ingested = (doc: Record<string, unknown> | undefined) =>
      Date.parse(String((doc?.event as { ingested?: string } | undefined)?.ingested))
    expect(first?.every((p) => Number.isFinite(ingested(p.doc)))).toBe(true)
    expect(ingested(retried?.[0]?.doc)).toBeGreaterThan(ingested(first?.[1]?.doc))
    await sink.close()
  })

  it('returns other 4xx items as final failures with the reason, never retrying them', async () => {
    es.script.push(onBulk(0, () => bulkAnswer([201, 400, 201, 201, 201, 201, 201, 404])))
    const sink = indexer()
    const { failed } = await sink.writeBatch(batch)
    expect(failed.map((f) => f.index)).toEqual([1, 7])
    const first = failed[0]?.error as NerveError
    expect(first).toBeInstanceOf(NerveError)
    expect(first).toMatchObject({ code: 'SINK_REJECTED', retriable: false })
    expect(first.message).toContain('document_parsing_exception: failed with 400')
    expect(first.details).toMatchObject({ status: 400, data_stream: 'logs-nerve.events-default' })
    expect(es.bulkRequests()).toHaveLength(1)
    expect(
      await rt.metricValue('nerve_component_errors_total', { ...component, error_code: 'SINK_REJECTED' }),
    ).toBe(2)
    const letters = toDeadLetters(batch, failed, 1_700_000_000_000)
    expect(letters[0]).toMatchObject({
      component: 'elasticsearch_indexer',
      error_code: 'SINK_REJECTED',
      index: 1,
      original_encoding: 'utf8',
    })
    expect(JSON.parse(letters[0]?.original ?? '')).toEqual(JSON.parse(JSON.stringify(events[1])))
    await sink.close()
  })

  it('splits a request answered 413 until the halves fit', async () => {
    const tooLarge = (req: FakeRequest) =>
      req.path.startsWith('/_bulk') && req.body.split('\n').filter(Boolean).length > 4
        ? { status: 413, body: { error: { type: 'content_too_long', reason: 'too long' } } }
        : undefined
    es.script.push(tooLarge)
    const sink = indexer()
    expect(await sink.writeBatch(batch)).toEqual({ failed: [] })
    expect(es.bulkRequests().map((r) => r.length)).toEqual([8, 4, 2, 2, 4, 2, 2])
    expect(es.documents.size).toBe(batch.length)
    await sink.close()
  })

  it('gives up on one document that alone is too large, as a final failure', async () => {
    es.script.push((req) =>
      req.body.includes(`"_id":"${correlation.id}"`)
        ? { status: 413, body: { error: { type: 'content_too_long' } } }
        : undefined,
    )
    const sink = indexer()
    const { failed } = await sink.writeBatch(batch)
    expect(failed.map((f) => [f.index, f.error.code])).toEqual([[5, 'PAYLOAD_TOO_LARGE']])
    expect(es.documents.size).toBe(batch.length - 1)
    await sink.close()
  })

  it('retries the whole request after a 503, then succeeds; readiness follows', async () => {
    const health: boolean[] = []
    es.script.push(
      onBulk(0, () => ({ status: 503, body: { error: { type: 'unavailable', reason: 'starting' } } })),
    )
    const sleepingIndexer = createElasticsearchIndexer(configFor(), {
      log: rt.log,
      metrics: rt.metrics,
      sleep: async (ms) => {
        delays.push(ms)
        health.push(sleepingIndexer.checkHealth().ok)
      },
    })
    expect(await sleepingIndexer.writeBatch(batch)).toEqual({ failed: [] })
    expect(health).toEqual([false])
    expect(sleepingIndexer.checkHealth()).toEqual({ ok: true })
    expect(es.bulkRequests().map((r) => r.length)).toEqual([8, 8])
    expect(es.documents.size).toBe(batch.length)
    expect(
      await rt.metricValue('nerve_component_errors_total', { ...component, error_code: 'SINK_UNAVAILABLE' }),
    ).toBe(1)
    await sleepingIndexer.close()
  })

  it('retries after a dropped connection', async () => {
    es.script.push(onBulk(0, () => 'drop-connection' as never))
    const sink = indexer()
    expect(await sink.writeBatch(batch)).toEqual({ failed: [] })
    expect(es.documents.size).toBe(batch.length)
    expect(delays).toHaveLength(1)
    await sink.close()
  })

  it('rejects the batch after max_retries rounds, so nothing is committed and the bus delivers it again', async () => {
    es.script.push((req) => (req.path.startsWith('/_bulk') ? bulkAnswer(batch.map(() => 429)) : undefined))
    const sink = indexer({ max_retries: 2 })
    const error = await sink.writeBatch(batch).catch((err: unknown) => err)
    expect(isNerveError(error) && error.code).toBe('SINK_UNAVAILABLE')
    expect(isNerveError(error) && error.retriable).toBe(true)
    expect(es.bulkRequests()).toHaveLength(3)
    expect(delays).toEqual([backoffMs(0, () => 0.5), backoffMs(1, () => 0.5)])
    expect(rt.logs.some((l) => l.level === 'error')).toBe(true)
    await sink.close()
  })

  it('reports degraded while items fail after every retry in answers of 200, until those are indexed', async () => {
    const sink = indexer({ max_retries: 2 })
    // Half the batch is in before the cluster is overloaded.
    expect(await sink.writeBatch(batch.slice(0, 4))).toEqual({ failed: [] })
    // Every bulk request is answered 200, each item 429 or 503 (the thread pools are full).
    const busy = (req: FakeRequest) =>
      req.path.startsWith('/_bulk')
        ? bulkAnswer(parseBulk(req.body).map((_, i) => (i % 2 === 0 ? 429 : 503)))
        : undefined
    es.script.push(busy)
    await expect(sink.writeBatch(batch)).rejects.toMatchObject({ code: 'SINK_UNAVAILABLE' })
    const degraded = {
      ok: false,
      detail:
        '8 documents not indexed after every retry (last: item status 429: 4, 503: 4 after 3 attempts); ok again once they are',
    }
    expect(sink.checkHealth()).toEqual(degraded)
    // Other documents that go in say nothing of those still waiting on the bus.
    es.script.splice(0)
    const other = revokeOutcomes.slice(2, 3).map((value): IndexItem => ({ topic: 'revoke_outcomes', value }))
    expect(await sink.writeBatch(other)).toEqual({ failed: [] })
    expect(sink.checkHealth()).toEqual(degraded)
    // The bus delivers the batch again: its first half is answered 409 (there), which is indexed too.
    expect(await sink.writeBatch(batch)).toEqual({ failed: [] })
    expect(await rt.metricValue('nerve_elasticsearch_documents_total', { result: 'duplicate' })).toBe(4)
    expect(sink.checkHealth()).toEqual({ ok: true })
    await sink.close()
  })

  it('forgets documents given up on that are not delivered again for ten minutes (their partition moved away)', async () => {
    let clock = Date.parse('2024-04-16T10:00:00Z')
    const sink = createElasticsearchIndexer(configFor({ max_retries: 1 }), {
      log: rt.log,
      metrics: rt.metrics,
      sleep: async (ms) => void delays.push(ms),
      random: () => 0.5,
      now: () => clock,
    })
    es.script.push((req: FakeRequest) =>
      req.path.startsWith('/_bulk') ? bulkAnswer(parseBulk(req.body).map(() => 429)) : undefined,
    )
    await expect(sink.writeBatch(batch)).rejects.toMatchObject({ code: 'SINK_UNAVAILABLE' })
    es.script.splice(0)
    expect(sink.checkHealth().ok).toBe(false)
    // Another instance owns the partition now: this one indexes other documents, never these again.
    clock += unindexedForgetMs - 1_000
    const other = revokeOutcomes.slice(2, 3).map((value): IndexItem => ({ topic: 'revoke_outcomes', value }))
    expect(await sink.writeBatch(other)).toEqual({ failed: [] })
    expect(sink.checkHealth().ok).toBe(false)
    clock += 1_000
    expect(sink.checkHealth()).toEqual({ ok: true })
    await sink.close()
  })

  it('stops at once when the credentials are refused, and reports not ready', async () => {
    es.script.push(() => ({
      status: 401,
      body: { error: { type: 'security_exception', reason: 'unable to authenticate' } },
    }))
    const sink = indexer()
    const error = await sink.writeBatch(batch).catch((err: unknown) => err)
    expect(isNerveError(error) && error.code).toBe('SINK_UNAVAILABLE')
    expect(String((error as Error).message)).toContain('security_exception')
    expect(es.bulkRequests()).toHaveLength(1)
    expect(sink.checkHealth().ok).toBe(false)
    await sink.close()
  })

  it('stops on any other refusal of the whole request instead of dead-lettering the items', async () => {
    es.script.push(() => ({
      status: 404,
      body: { error: { type: 'no_handler_found', reason: 'wrong path' } },
    }))
    const sink = indexer()
    const error = await sink.writeBatch(batch).catch((err: unknown) => err)
    expect(error).toMatchObject({ code: 'SINK_UNAVAILABLE', retriable: false })
    expect(String((error as Error).message)).toContain('refused the bulk request (HTTP 404)')
    expect(sink.checkHealth()).toEqual({
      ok: false,
      detail: 'Elasticsearch refused the bulk request (HTTP 404)',
    })
    await sink.close()
  })

  it('sends an API key, or basic credentials', async () => {
    await indexer({ api_key: 'a2V5OnNlY3JldA==' }).writeBatch(batch.slice(0, 1))
    await indexer({ username: 'nerve', password: 's3cret' }).writeBatch(batch.slice(1, 2))
    expect(es.requests.map((r) => r.headers.authorization)).toEqual([
      'ApiKey a2V5OnNlY3JldA==',
      `Basic ${Buffer.from('nerve:s3cret').toString('base64')}`,
    ])
  })

  it('skips events when index_events is off, and says which topics to subscribe', async () => {
    const sink = indexer({ index_events: false })
    expect(await sink.writeBatch(batch)).toEqual({ failed: [] })
    expect(es.bulkRequests()[0]).toHaveLength(3)
    expect(
      await rt.metricValue('nerve_component_discarded_events_total', { reason: 'events_disabled' }),
    ).toBe(5)
    expect(topicsToIndex(configFor({ index_events: false }))).toEqual(['correlations', 'revoke_outcomes'])
    expect(topicsToIndex(configFor())).toEqual(['events', 'correlations', 'revoke_outcomes'])
    await sink.close()
  })

  it('trusts the CA file for an HTTPS Elasticsearch, and no other', async () => {
    const tls = resolve(import.meta.dirname, '../../fixtures/elasticsearch/tls')
    const secure = await startFakeElasticsearch({
      tls: { cert: readFileSync(`${tls}/server.pem`), key: readFileSync(`${tls}/server-key.pem`) },
    })
    try {
      const trusting = indexer({ url: secure.url, ca_file: `${tls}/ca.pem` })
      expect(await trusting.writeBatch(batch)).toEqual({ failed: [] })
      expect(secure.documents.size).toBe(batch.length)
      const untrusting = indexer({ url: secure.url, max_retries: 0 })
      const error = await untrusting.writeBatch(batch).catch((err: unknown) => err)
      expect(isNerveError(error) && error.code).toBe('SINK_UNAVAILABLE')
      expect(untrusting.checkHealth()).toMatchObject({
        ok: false,
        detail: expect.stringMatching(/certificate/),
      })
      await Promise.all([trusting.close(), untrusting.close()])
    } finally {
      await secure.close()
    }
  })

  it('refuses to start without a URL, or with a CA file it cannot read', () => {
    const make = (c: Partial<ElasticsearchConfig>) => () =>
      createElasticsearchIndexer(configFor(c), { log: rt.log, metrics: rt.metrics })
    expect(make({ url: undefined })).toThrow(/NERVE_ELASTICSEARCH_URL/)
    expect(make({ ca_file: '/nonexistent/ca.pem' })).toThrow(/ca_file/)
  })

  it('emits the four component counters, labelled elasticsearch_indexer', async () => {
    es.script.push(onBulk(0, () => bulkAnswer([201, 400, 201])))
    await indexer({ index_events: false }).writeBatch(batch)
    const text = await rt.metrics.render()
    for (const name of ['received', 'sent', 'discarded']) {
      expect(text).toMatch(
        new RegExp(`nerve_component_${name}_events_total\\{component="elasticsearch_indexer"[^}]*\\} \\d`),
      )
    }
    expect(text).toContain(
      'nerve_component_errors_total{component="elasticsearch_indexer",error_code="SINK_REJECTED",stage="index"} 1',
    )
  })
})
