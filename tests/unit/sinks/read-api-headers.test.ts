// The read API's answers hold ARNs, access key ids, command lines and text the watched agent wrote. They are
// said to be private to the reader and never stored (a browser's disk cache, a proxy), and their JSON is
// never sniffed as anything else. Before: no cache-control and no nosniff on any of them.
import { afterEach, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { createRejectedStore } from '../../../sinks/rejected-store.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { makeCorrelation } from './correlation-fixture.ts'
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
