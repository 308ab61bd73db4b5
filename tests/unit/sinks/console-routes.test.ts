// The console's pages hold no data, so they are served without auth; what they show comes from the read
// API, which keeps its auth: a token as soon as nerve listens beyond loopback. The page is sent with a
// Content-Security-Policy that allows only nerve's own script, and its script never writes HTML.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { consoleRoutes } from '../../../sinks/console-routes.ts'
import { createCorrelationStore } from '../../../sinks/correlation-store.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'

function server(host: string) {
  const rt = createTestRuntime()
  const config = loadConfig({ env: { NERVE_HTTP_HOST: host } })
  const http = createHttpServer(config.http, {
    log: rt.log,
    metrics: rt.metrics,
    ingestToken: 'nrv_read-token-123',
  })
  const store = createCorrelationStore({ data_dir: tempDir('nerve-console') }, { metrics: rt.metrics })
  http.addRoutes([...consoleRoutes(), ...store.routes])
  return { http, store }
}

describe('console routes', () => {
  it('serves the page, script and style with a strict CSP, and keeps the data behind the read auth', async () => {
    const { http, store } = server('0.0.0.0')
    try {
      const page = await http.inject({ method: 'GET', url: '/' })
      expect(page.statusCode).toBe(200)
      expect(page.headers['content-type']).toContain('text/html')
      expect(page.headers['content-security-policy']).toContain("script-src 'self'")
      expect(page.headers['content-security-policy']).toContain("default-src 'none'")
      expect(page.headers['x-content-type-options']).toBe('nosniff')
      // Trusted Types: a later change that writes HTML (innerHTML, outerHTML) throws in the browser instead of
      // running what the watched agent wrote.
      expect(page.headers['content-security-policy']).toContain("require-trusted-types-for 'script'")
      expect(page.headers['content-security-policy']).toContain("trusted-types 'none'")
      expect(page.body).toContain('/console/console.js')
      const script = await http.inject({ method: 'GET', url: '/console/console.js' })
      expect(script.headers['content-type']).toContain('text/javascript')
      expect((await http.inject({ method: 'GET', url: '/console/console.css' })).statusCode).toBe(200)

      expect((await http.inject({ method: 'GET', url: '/v1/incidents' })).statusCode).toBe(401)
      const authorized = await http.inject({
        method: 'GET',
        url: '/v1/incidents',
        headers: { authorization: 'Bearer nrv_read-token-123' },
      })
      expect(authorized.statusCode).toBe(200)
    } finally {
      await store.close()
    }
  })

  it('puts text on the page only as text', () => {
    const script = readFileSync(resolve(import.meta.dirname, '../../../sinks/console/console.js'), 'utf8')
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/)
  })
})
