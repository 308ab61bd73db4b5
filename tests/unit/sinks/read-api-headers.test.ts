// The read API's answers hold ARNs, access key ids, command lines and text the watched agent wrote. They are
// said to be private to the reader and never stored (a browser's disk cache, a proxy), and their JSON is
// never sniffed as anything else. Before: no cache-control and no nosniff on any of them.
import { afterEach, describe, expect, it } from 'vitest'
import { startIngest } from '../../../ingest/start-ingest.ts'
import { createHttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { createRejectedStore } from '../../../sinks/rejected-store.ts'
import { startSinks } from '../../../sinks/start-sinks.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { createMemoryBus } from './memory-bus.ts'
import { closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

const expectPrivate = (headers: Record<string, unknown>, url: string) => {
  expect(headers['cache-control'], url).toBe('no-store')
  expect(headers['x-content-type-options'], url).toBe('nosniff')
}

describe('read API answers', () => {
  it('are never stored and never sniffed: correlations, incidents, an incident, revokes', async () => {
    const { store, rt } = openStore()
    store.writeCorrelations([makeCorrelation(0)])
    const server = createHttpServer(loadConfig().http, { log: rt.log, metrics: rt.metrics, ingestToken: 'x' })
    server.addRoutes(store.routes)
    const incident = (await server.inject('/v1/incidents')).json().items[0].id
    for (const url of ['/v1/correlations', '/v1/incidents', `/v1/incidents/${incident}`, '/v1/revokes']) {
      const res = await server.inject(url)
      expect(res.statusCode, url).toBe(200)
      expectPrivate(res.headers, url)
    }
  })

  it('are never stored and never sniffed: dead letters and late events', async () => {
    const rt = createTestRuntime()
    const rejected = createRejectedStore({ data_dir: tempDir('nerve-rejected') }, rt)
    try {
      const server = createHttpServer(loadConfig().http, {
        log: rt.log,
        metrics: rt.metrics,
        ingestToken: 'x',
      })
      server.addRoutes(rejected.routes)
      for (const url of ['/v1/dead-letters', '/v1/late-events']) {
        const res = await server.inject(url)
        expect(res.statusCode, url).toBe(200)
        expectPrivate(res.headers, url)
      }
    } finally {
      await rejected.close()
    }
  })
})

/**
 * Every route the stages give the server that reads (`auth: 'read'`), so a route added later is asked too:
 * the store's (served by the reader thread, as `nerve run` serves them), dead letters and late events, and
 * ingest's agents. Every answer of each, refusals included: a 400 echoes the reader's query, a 404 the id
 * asked for, and a 401 or 403 is what a browser on a DNS-rebinding page sees.
 */
describe('every answer of every read route', () => {
  it('is never stored and never sniffed: 200, 400, 404, 401 and 403', async () => {
    const config = loadConfig({ env: { NERVE_DATA_DIR: tempDir('nerve-read-headers') } })
    const rt = createTestRuntime()
    const sinks = await startSinks(config, {
      bus: createMemoryBus(),
      log: rt.log,
      metrics: rt.metrics,
      now: Date.now,
    })
    const ingest = await startIngest(config, {
      bus: createMemoryBus(),
      log: rt.log,
      metrics: rt.metrics,
      now: Date.now,
    })
    try {
      const routes = [...sinks.routes, ...ingest.routes].filter((r) => r.auth === 'read')
      expect(routes.map((r) => r.url)).toEqual(
        expect.arrayContaining(['/v1/correlations', '/v1/incidents/:id', '/v1/dead-letters', '/v1/agents']),
      )
      const serve = (host: string) => {
        const server = createHttpServer(
          { ...config.http, host },
          { log: rt.log, metrics: rt.metrics, ingestToken: 'tok' },
        )
        server.addRoutes([...sinks.routes, ...ingest.routes])
        return server
      }
      const loopback = serve('127.0.0.1')
      const open = serve('0.0.0.0')
      const hostile = encodeURIComponent('<script>alert(1)</script>')
      for (const route of routes) {
        const url = route.url.replace(':id', 'no-such-incident')
        const isDetail = url !== route.url
        const answers = [
          [isDetail ? 404 : 200, await loopback.inject(url)],
          [400, await loopback.inject(isDetail ? `${url}?correlations=0` : `${url}?limit=0&${hostile}=1`)],
          [403, await loopback.inject({ url, headers: { host: 'rebound.attacker.example' } })],
          [401, await open.inject(url)],
        ] as const
        for (const [status, res] of answers) {
          const what = `${route.url} ${status}`
          expect(res.statusCode, what).toBe(status)
          expectPrivate(res.headers, what)
        }
      }
      await loopback.close()
      await open.close()
    } finally {
      await ingest.close()
      await sinks.close()
    }
  })
})
