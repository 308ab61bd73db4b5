import { afterEach, describe, expect, it } from 'vitest'
import { correlationsTopic } from '../../../bus/topics.ts'
import { createHttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config } from '../../../schemas/types.ts'
import { type Sinks, startSinks } from '../../../sinks/start-sinks.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { createMemoryBus } from './memory-bus.ts'
import { startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.ts'

const open: (Sinks | WebhookReceiver)[] = []
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
    expect((await get('/v1/correlations')).items).toEqual([c])
    const incident = await get(`/v1/incidents/${c.incident.id}`)
    expect(incident.incident.revoke).toMatchObject({ status: 'sent', reason: 'delivered' })
    expect(incident.revokes.map((o: { status: string }) => o.status)).toEqual(['sent', 'pending'])
    expect((await server.inject({ method: 'GET', url: '/readyz' })).json()).toMatchObject({
      status: 'ready',
      checks: { revoke_webhooks: { ok: true } },
    })
    const metrics = await server.inject({ method: 'GET', url: '/metrics' })
    for (const component of ['correlation_store', 'revoke_dispatcher']) {
      expect(metrics.body).toContain(`nerve_component_received_events_total{component="${component}"}`)
    }
    await server.close()
  })
})
