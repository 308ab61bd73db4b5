import { afterEach, describe, expect, it, vi } from 'vitest'
import { correlationsTopic, type DeadLetter, deadLetterTopic } from '../../../bus/topics.ts'
import { createHttpServer } from '../../../runtime/http-server.ts'
import { parseListQuery } from '../../../runtime/list-query.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config } from '../../../schemas/types.ts'
import { createCorrelationStore } from '../../../sinks/correlation-store.ts'
import { type Sinks, startSinks } from '../../../sinks/start-sinks.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import {
  bulkAnswer,
  type FakeElasticsearch,
  parseBulk,
  startFakeElasticsearch,
} from './elasticsearch-fake-server.ts'
import { createMemoryBus } from './memory-bus.ts'
import { startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.ts'

const open: (Sinks | WebhookReceiver | FakeElasticsearch)[] = []
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close()
})

describe('startSinks', () => {
  it('carries correlations to the store and to a signed webhook, and the outcomes back to the store', async () => {
    const receiver = await startWebhookReceiver()
    open.push(receiver)
    const base = loadConfig({ env: { NERVE_DATA_DIR: tempDir('nerve-sinks') } })
    const config: Config = {
      ...base,
      revoke: {
        ...base.revoke,
        webhooks: [
          {
            url: receiver.url,
            secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
            timeout: 5000,
            concurrency: 2,
          },
        ],
      },
    }
    const rt = createTestRuntime()
    const bus = createMemoryBus()
    const sinks = await startSinks(config, { bus, log: rt.log, metrics: rt.metrics, now: Date.now })
    open.push(sinks)
    const server = createHttpServer(config.http, { log: rt.log, metrics: rt.metrics, ingestToken: 't' })
    server.addRoutes(sinks.routes)
    for (const [name, check] of Object.entries(sinks.readiness)) server.addReadinessCheck(name, check)
    const get = async (url: string) => (await server.inject({ method: 'GET', url })).json()

    const c = makeCorrelation(0)
    await bus.publish(correlationsTopic, [
      { key: c.agent.id, value: c },
      { key: c.agent.id, value: c },
    ])

    await waitFor(async () => (await get('/v1/revokes?status=sent')).count === 1, { what: 'a sent revoke' })
    expect(receiver.requests).toHaveLength(1)
    expect((await get('/v1/correlations')).items).toMatchObject([c])
    const incident = await get(`/v1/incidents/${c.incident.id}`)
    expect(incident.incident.revoke).toMatchObject({ status: 'sent', reason: 'delivered' })
    expect(incident.revokes.map((o: { status: string }) => o.status)).toEqual(['sent', 'pending'])
    expect((await server.inject({ method: 'GET', url: '/readyz' })).json()).toMatchObject({
      status: 'ready',
      checks: { correlation_store: { ok: true, optional: true }, revoke_webhooks: { ok: true } },
    })
    const metrics = await server.inject({ method: 'GET', url: '/metrics' })
    for (const component of ['correlation_store', 'revoke_dispatcher']) {
      expect(metrics.body).toContain(`nerve_component_received_events_total{component="${component}"}`)
    }
    await server.close()
  })

  // The audit's repro: nerve run serves ingest in the same process, a load balancer routes on /readyz, and
  // Falco's senders never retry. A SOAR endpoint answering 503 (or 410 once) took ingest out of it.
  it('stays ready while a revoke target is gone or failing: degraded, with each target in the detail', async () => {
    const gone = await startWebhookReceiver(() => ({ status: 410 }))
    const failing = await startWebhookReceiver(() => ({ status: 503, headers: { 'retry-after': '0' } }))
    open.push(gone, failing)
    const base = loadConfig({ env: { NERVE_DATA_DIR: tempDir('nerve-sinks') } })
    const target = { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', timeout: 5000, concurrency: 2 }
    const config: Config = {
      ...base,
      revoke: {
        ...base.revoke,
        max_attempts: 3,
        max_backoff: 1,
        webhooks: [
          { url: gone.url, ...target },
          { url: failing.url.replace('/revoke', '/soar'), ...target },
        ],
      },
    }
    const rt = createTestRuntime()
    const bus = createMemoryBus()
    const sinks = await startSinks(config, { bus, log: rt.log, metrics: rt.metrics, now: Date.now })
    open.push(sinks)
    const server = createHttpServer(config.http, { log: rt.log, metrics: rt.metrics, ingestToken: 't' })
    for (const [name, check] of Object.entries(sinks.readiness)) server.addReadinessCheck(name, check)
    const c = makeCorrelation(0)
    await bus.publish(correlationsTopic, [{ key: c.agent.id, value: c }])
    await waitFor(() => failing.requests.length === 3 && gone.requests.length === 1, { what: 'the attempts' })
    // The receiver counts the third attempt before the dispatcher has its answer: wait for the detail.
    await waitFor(
      async () =>
        /target_gone.*3 failed attempts/.test(
          (await server.inject({ method: 'GET', url: '/readyz' })).json().checks.revoke_webhooks.detail ?? '',
        ),
      { what: 'both targets unhealthy' },
    )
    const ready = await server.inject({ method: 'GET', url: '/readyz' })
    expect(ready.statusCode).toBe(200)
    expect(ready.json()).toEqual({
      status: 'degraded',
      checks: {
        correlation_store: { ok: true, optional: true },
        revoke_webhooks: {
          ok: false,
          optional: true,
          detail: `${gone.url}: target_gone; ${failing.url.replace('/revoke', '/soar')}: 3 failed attempts`,
        },
      },
    })
    expect(await rt.metricValue('nerve_revoke_target_healthy', { target: gone.url })).toBe(0)
    await server.close()
  })

  it('deletes incidents past sinks.store.retention on a timer', async () => {
    const base = loadConfig({ env: { NERVE_DATA_DIR: tempDir('nerve-sinks') } })
    const config: Config = {
      ...base,
      sinks: { ...base.sinks, store: { ...base.sinks.store, retention: 3_600_000 } },
    }
    const c = makeCorrelation(0)
    const rt = createTestRuntime()
    const bus = createMemoryBus()
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    try {
      const now = () => c.time + 2 * 3_600_000
      const sinks = await startSinks(config, { bus, log: rt.log, metrics: rt.metrics, now })
      open.push(sinks)
      const server = createHttpServer(config.http, { log: rt.log, metrics: rt.metrics, ingestToken: 't' })
      server.addRoutes(sinks.routes)
      const count = async () => (await server.inject({ method: 'GET', url: '/v1/correlations' })).json().count
      await bus.publish(correlationsTopic, [{ key: c.agent.id, value: c }])
      await waitFor(async () => (await count()) === 1, { what: 'the correlation stored' })
      vi.advanceTimersByTime(6 * 60_000) // a tenth of the retention
      // The sweep runs on the store's writer thread: its answer comes back asynchronously.
      await waitFor(async () => (await count()) === 0, { what: 'the incident deleted' })
      // The rows are gone once the thread commits; the count is kept when its answer reaches this thread.
      const deleted = () => rt.metricValue('nerve_store_retention_deleted_rows_total', { table: 'incidents' })
      await waitFor(async () => (await deleted()) === 1, { what: 'the deletion counted' })
      await server.close()
    } finally {
      vi.useRealTimers()
    }
  })

  it('closes without waiting out sinks.store.commit_interval: the batch that waits is written at once', async () => {
    const dataDir = tempDir('nerve-sinks')
    const base = loadConfig({ env: { NERVE_DATA_DIR: dataDir } })
    const config: Config = {
      ...base,
      sinks: { ...base.sinks, store: { ...base.sinks.store, commit_interval: 60_000 } },
    }
    const rt = createTestRuntime()
    const bus = createMemoryBus()
    // The store's handler is told apart by its group: what it was handed is what is in flight at close.
    const handed = new Set<string>()
    const subscribe = bus.subscribe.bind(bus)
    bus.subscribe = (topic, group, handle, options) =>
      subscribe(
        topic,
        group,
        async (batch) => {
          if (topic === correlationsTopic && group === 'nerve-store')
            for (const r of batch) handed.add((r.value as { id: string }).id)
          await handle(batch)
        },
        options,
      )
    const sinks = await startSinks(config, { bus, log: rt.log, metrics: rt.metrics, now: Date.now })
    const server = createHttpServer(config.http, { log: rt.log, metrics: rt.metrics, ingestToken: 't' })
    server.addRoutes(sinks.routes)
    const count = async () => (await server.inject({ method: 'GET', url: '/v1/correlations' })).json().count
    const [first, second] = [makeCorrelation(0), makeCorrelation(1)]
    await bus.publish(correlationsTopic, [{ key: first.agent.id, value: first }])
    // An idle writer commits at once; the next batch waits for the interval, its handler still in flight.
    await waitFor(async () => (await count()) === 1, { what: 'the first correlation stored' })
    // (store-writer-thread.test.ts shows that such a batch waits for the interval.) A batch the bus has
    // not handed over yet at close stays on the bus: the claim is about the one in flight.
    await bus.publish(correlationsTopic, [{ key: second.agent.id, value: second }])
    await waitFor(() => handed.has(second.id), { what: 'the second correlation handed to the store' })
    expect(await count()).toBe(1)
    // SIGTERM: the consumers finish their batches in flight, which must not wait out the interval: a close
    // that waited for it would outlast the test's timeout (20 s).
    await sinks.close()
    await server.close()
    const store = createCorrelationStore({ data_dir: dataDir }, { metrics: rt.metrics })
    expect(
      store
        .correlations(parseListQuery({ limit: '10' }, ['agent']))
        .map((c) => c.id)
        .sort(),
    ).toEqual([first.id, second.id].sort())
    await store.close()
  })

  it('indexes correlations and revoke outcomes into Elasticsearch when configured, dead-lettering rejections', async () => {
    const es = await startFakeElasticsearch()
    open.push(es)
    const rejected = makeCorrelation(1)
    es.script.push((req) => {
      if (!req.path.startsWith('/_bulk')) return undefined
      const items = parseBulk(req.body)
      if (!items.some((i) => i.action.create._id === rejected.id)) return undefined
      return bulkAnswer(items.map((i) => (i.action.create._id === rejected.id ? 400 : 201)))
    })
    const loaded = loadConfig({
      env: { NERVE_DATA_DIR: tempDir('nerve-sinks'), NERVE_ELASTICSEARCH_URL: es.url },
    })
    // Dry-run: the revoke is decided and recorded (a revoke outcome) without a webhook target.
    const base = { ...loaded, revoke: { ...loaded.revoke, dry_run: true } }
    const rt = createTestRuntime()
    const bus = createMemoryBus()
    const sinks = await startSinks(base, { bus, log: rt.log, metrics: rt.metrics, now: Date.now })
    open.push(sinks)
    expect(Object.keys(sinks.readiness).sort()).toEqual([
      'correlation_store',
      'elasticsearch',
      'revoke_webhooks',
    ])

    const c = makeCorrelation(0)
    await bus.publish(
      correlationsTopic,
      [c, rejected].map((value) => ({ key: value.agent.id, value })),
    )
    const sentIds = () => es.bulkRequests().flatMap((items) => items.map((i) => i.action.create._id))
    await waitFor(() => sentIds().includes(c.id), { what: 'the correlation document' })
    const request = es.bulkRequests().find((items) => items.some((i) => i.action.create._id === c.id))
    expect(request?.map((i) => i.action.create)).toEqual([
      { _index: 'logs-nerve.correlations-default', _id: c.id },
      { _index: 'logs-nerve.correlations-default', _id: rejected.id },
    ])
    const letters = await waitFor(() => {
      const found = bus.published<DeadLetter>(deadLetterTopic)
      return found.length > 0 ? found : undefined
    })
    expect(letters).toHaveLength(1)
    expect(letters[0]).toMatchObject({
      component: 'elasticsearch_indexer',
      reason: expect.stringContaining('400'),
    })
    // The dry-run revoke's outcome is indexed too.
    await waitFor(() => [...es.documents.keys()].some((k) => k.startsWith('logs-nerve.revokes-default/')))
  })

  it('serves reads without a token on loopback only; listening beyond it, reads need the ingest token', async () => {
    const rt = createTestRuntime()
    for (const [host, anonymous] of [
      ['127.0.0.1', 200],
      ['0.0.0.0', 401],
    ] as const) {
      const config = loadConfig({ env: { NERVE_DATA_DIR: tempDir('nerve-sinks'), NERVE_HTTP_HOST: host } })
      const sinks = await startSinks(config, {
        bus: createMemoryBus(),
        log: rt.log,
        metrics: rt.metrics,
        now: Date.now,
      })
      open.push(sinks)
      const server = createHttpServer(config.http, { log: rt.log, metrics: rt.metrics, ingestToken: 'tok' })
      server.addRoutes(sinks.routes)
      expect((await server.inject({ method: 'GET', url: '/v1/correlations' })).statusCode).toBe(anonymous)
      const authorized = await server.inject({
        method: 'GET',
        url: '/v1/incidents',
        headers: { authorization: 'Bearer tok' },
      })
      expect(authorized.statusCode).toBe(200)
      await server.close()
    }
  })
})
