import { once } from 'node:events'
import { Agent, get, type IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import { describe, expect, it, vi } from 'vitest'
import { NerveError } from '../../../runtime/errors.ts'
import { optionalCheck, type Route } from '../../../runtime/http-routes.ts'
import { createHttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'

const token = 'nrv_test-token-0123456789abcdef'

function makeServer(routes: Route[] = []) {
  const rt = createTestRuntime()
  const server = createHttpServer(loadConfig().http, { log: rt.log, metrics: rt.metrics, ingestToken: token })
  server.addRoutes(routes)
  return { server, rt }
}

const echo: Route = {
  method: 'POST',
  url: '/v1/echo',
  auth: 'ingest',
  handle: async (req) => ({ status: 202, body: { accepted: 1, bytes: req.body.length } }),
}

describe('http server', () => {
  it('answers /healthz and serves Prometheus text on /metrics', async () => {
    const { server, rt } = makeServer()
    rt.metrics.component('falco_receiver').received(3)
    expect((await server.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' })
    const metrics = await server.inject({ method: 'GET', url: '/metrics' })
    expect(metrics.headers['content-type']).toContain('text/plain')
    expect(metrics.body).toContain('nerve_component_received_events_total{component="falco_receiver"} 3')
  })

  it('hands every body to the route as its bytes, whatever its Content-Type, and counts each answer', async () => {
    const { server, rt } = makeServer([echo])
    const types = [
      'application/json',
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/x-ndjson',
      'text/plain',
      'application/gzip',
      'application/octet-stream',
      'application/vnd.unknown+json',
      'x/y; a="b"',
    ]
    for (const type of types) {
      for (let i = 0; i < 2; i++) {
        const res = await server.inject({
          method: 'POST',
          url: '/v1/echo',
          headers: { authorization: `Bearer ${token}`, 'content-type': type },
          payload: '{"a":"é"}\n',
        })
        expect(res.statusCode, type).toBe(202)
        expect(res.json(), type).toEqual({ accepted: 1, bytes: 11 })
      }
    }
    expect(await rt.metricValue('nerve_http_requests_total', { route: '/v1/echo', status: '202' })).toBe(
      2 * types.length,
    )
  })

  it('is ready only when every readiness check passes, and says which fails', async () => {
    const { server } = makeServer()
    let busUp = false
    server.addReadinessCheck('bus', () => ({ ok: busUp, detail: busUp ? undefined : 'not open yet' }))
    const before = await server.inject({ method: 'GET', url: '/readyz' })
    expect(before.statusCode).toBe(503)
    expect(before.json()).toMatchObject({
      status: 'not_ready',
      checks: { bus: { ok: false, detail: 'not open yet' } },
    })
    busUp = true
    expect((await server.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200)
  })

  // A load balancer routes ingest on /readyz, and Falco's senders never retry: a part that ingest does not
  // need to accept durably (a revoke target, Elasticsearch) must not take ingest out of it.
  it('stays ready (200, degraded) while only an optional check fails, with its detail', async () => {
    const { server } = makeServer()
    let busUp = true
    server.addReadinessCheck('bus', () => ({ ok: busUp }))
    server.addReadinessCheck(
      'revoke_webhooks',
      optionalCheck(() => ({ ok: false, detail: 'http://soar.example/revoke: target_gone' })),
    )
    const degraded = await server.inject({ method: 'GET', url: '/readyz' })
    expect(degraded.statusCode).toBe(200)
    expect(degraded.json()).toEqual({
      status: 'degraded',
      checks: {
        bus: { ok: true },
        revoke_webhooks: { ok: false, optional: true, detail: 'http://soar.example/revoke: target_gone' },
      },
    })
    busUp = false
    const down = await server.inject({ method: 'GET', url: '/readyz' })
    expect(down.statusCode).toBe(503)
    expect(down.json().status).toBe('not_ready')
  })

  it('accepts the ingest token as a bearer token (any case of the scheme) or a Firehose access key', async () => {
    const { server } = makeServer([echo])
    const ways = [
      { url: '/v1/echo', headers: { authorization: `Bearer ${token}` } },
      // RFC 9110 §11.1: the scheme is case-insensitive.
      { url: '/v1/echo', headers: { authorization: `bearer ${token}` } },
      { url: '/v1/echo', headers: { authorization: `BEARER  ${token}` } },
      { url: '/v1/echo', headers: { 'x-amz-firehose-access-key': token } },
    ]
    for (const way of ways) {
      const res = await server.inject({ method: 'POST', payload: '{"a":1}', ...way })
      expect(res.statusCode, JSON.stringify(way.headers)).toBe(202)
      expect(res.json()).toEqual({ accepted: 1, bytes: 7 })
    }
  })

  // Only Falco's http_output cannot send headers; a token in any other URL ends up in proxies' logs.
  it("takes a ?token= on Falco's route only, and tells other clients to send the header", async () => {
    const falco: Route = { ...echo, url: '/v1/falco', source: 'falco' }
    const cloudtrail: Route = { ...echo, url: '/v1/cloudtrail', source: 'cloudtrail' }
    const { server } = makeServer([falco, cloudtrail, echo])
    const inUrl = (url: string) =>
      server.inject({ method: 'POST', url: `${url}?token=${token}`, payload: '{}' })
    expect((await inUrl('/v1/falco')).statusCode).toBe(202)
    for (const url of ['/v1/cloudtrail', '/v1/echo']) {
      const res = await inUrl(url)
      expect(res.statusCode, url).toBe(401)
      expect(res.json().error.message, url).toMatch(
        /\?token= is taken on \/v1\/falco only.*Authorization: Bearer/,
      )
    }
  })

  it('serves reads openly on loopback and asks for the token when reachable from elsewhere', async () => {
    const read: Route = {
      ...echo,
      method: 'GET',
      auth: 'read',
      handle: async () => ({ status: 200, body: {} }),
    }
    const { server } = makeServer([read])
    expect((await server.inject({ method: 'GET', url: '/v1/echo' })).statusCode).toBe(200)

    const rt = createTestRuntime()
    const exposed = createHttpServer({ ...loadConfig().http, host: '0.0.0.0' }, { ...rt, ingestToken: token })
    exposed.addRoutes([read])
    expect((await exposed.inject({ method: 'GET', url: '/v1/echo' })).statusCode).toBe(401)
    const withToken = await exposed.inject({
      method: 'GET',
      url: '/v1/echo',
      headers: { authorization: `Bearer ${token}` },
    })
    expect(withToken.statusCode).toBe(200)
    // A read token goes in a header, never in the URL (shell history, proxies' logs, the address bar).
    const inUrl = await exposed.inject({ method: 'GET', url: `/v1/echo?token=${token}` })
    expect(inUrl.statusCode).toBe(401)
    expect(inUrl.json().error.message).toContain('Authorization: Bearer')
    const loopback = makeServer([read]).server
    const rebound = await loopback.inject({
      method: 'GET',
      url: `/v1/echo?token=${token}`,
      headers: { host: 'attacker.example' },
    })
    expect(rebound.statusCode).toBe(403)
  })

  it('answers 401 with a code and a message without a valid token', async () => {
    const { server } = makeServer([echo])
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${token}` }]) {
      const res = await server.inject({ method: 'POST', url: '/v1/echo', payload: '{}', headers })
      expect(res.statusCode).toBe(401)
      expect(res.json().error).toMatchObject({
        code: 'UNAUTHORIZED',
        message: expect.stringContaining('token'),
      })
    }
  })

  it('maps error codes to status, with Retry-After when the caller should come back', async () => {
    const failing = (err: NerveError): Route => ({ ...echo, auth: 'none', handle: () => Promise.reject(err) })
    const cases: [NerveError, number, string | undefined][] = [
      [new NerveError('INPUT_INVALID', 'bad', { details: [{ index: 0 }] }), 400, undefined],
      [new NerveError('SATURATED', 'busy', { retriable: true }), 429, '1'],
      [new NerveError('BUS_UNAVAILABLE', 'down', { retriable: true }), 503, '5'],
    ]
    for (const [err, status, retryAfter] of cases) {
      const { server } = makeServer([failing(err)])
      const res = await server.inject({ method: 'POST', url: '/v1/echo', payload: '{}' })
      expect(res.statusCode).toBe(status)
      expect(res.headers['retry-after']).toBe(retryAfter)
      expect(res.json().error.code).toBe(err.code)
    }
  })

  it('answers 413 for a body over the limit', async () => {
    const { server } = makeServer([echo])
    const res = await server.inject({
      method: 'POST',
      url: '/v1/echo',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: Buffer.alloc(11 * 1024 * 1024, 0x20),
    })
    expect(res.statusCode).toBe(413)
    expect(res.json().error.code).toBe('PAYLOAD_TOO_LARGE')
  })

  it('lets a route answer errors in its own shape (Firehose)', async () => {
    const route: Route = {
      ...echo,
      handle: () => Promise.reject(new NerveError('INPUT_INVALID', 'not base64')),
      formatError: (err) => ({ status: 400, body: { errorMessage: err.message } }),
    }
    const { server } = makeServer([route])
    const res = await server.inject({
      method: 'POST',
      url: '/v1/echo',
      headers: { authorization: `Bearer ${token}` },
      payload: '{}',
    })
    expect(res.json()).toEqual({ errorMessage: 'not base64' })
  })

  it("answers a body over a route's own limit with that limit, in the route's shape (Firehose)", async () => {
    const route: Route = {
      ...echo,
      bodyLimit: 12 * 1024 * 1024,
      formatError: (err) => ({ status: 413, body: { requestId: '', errorMessage: err.message } }),
    }
    const { server } = makeServer([route])
    const post = (bytes: number) =>
      server.inject({
        method: 'POST',
        url: '/v1/echo',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        payload: Buffer.alloc(bytes, 0x20),
      })
    expect((await post(11 * 1024 * 1024)).statusCode).toBe(202)
    const res = await post(13 * 1024 * 1024)
    expect(res.statusCode).toBe(413)
    expect(res.json()).toEqual({
      requestId: '',
      errorMessage: `Request body is over ${12 * 1024 * 1024} bytes.`,
    })
  })

  it('answers 404 as JSON for unknown routes', async () => {
    const { server } = makeServer()
    const res = await server.inject({ method: 'GET', url: '/v1/nope' })
    expect(res.statusCode).toBe(404)
    expect(res.json().error).toEqual({ code: 'NOT_FOUND', message: 'No route GET /v1/nope.' })
  })
})

describe("a route's signal", () => {
  /** A read that waits until its answer is no longer wanted, and says why. */
  function waitingRoute() {
    const reasons: unknown[] = []
    const held: boolean[] = []
    const route: Route = {
      method: 'GET',
      url: '/v1/waits',
      auth: 'none',
      handle: (req) =>
        new Promise((_resolve, reject) => {
          held.push(true)
          req.signal?.addEventListener('abort', () => {
            reasons.push(req.signal?.reason)
            reject(req.signal?.reason)
          })
        }),
    }
    return { route, reasons, held }
  }

  /** A server of the default config holding `route` alone, listening on a port of its own. */
  async function serving(route: Route) {
    const rt = createTestRuntime()
    const server = createHttpServer(
      { ...loadConfig().http, port: 0 },
      { log: rt.log, metrics: rt.metrics, ingestToken: token },
    )
    server.addRoutes([route])
    return { server, address: await server.listen() }
  }

  it('is aborted when the client closes its connection before the answer', async () => {
    const { route, reasons, held } = waitingRoute()
    const { server, address } = await serving(route)
    const client = new AbortController()
    const asked = fetch(`${address}/v1/waits`, { signal: client.signal }).catch(() => 'left')
    // The handler holds the request: then the client leaves.
    await vi.waitFor(() => expect(held).toHaveLength(1))
    client.abort()
    expect(await asked).toBe('left')
    await vi.waitFor(() => expect(reasons).toHaveLength(1))
    expect(reasons[0]).toMatchObject({ code: 'SINK_UNAVAILABLE' })
    await server.close()
  })

  it('is aborted for every pipelined request when the client leaves, not only the one answered first', async () => {
    const { route, reasons, held } = waitingRoute()
    const { server, address } = await serving(route)
    const { port } = new URL(address)
    const socket = connect(Number(port), '127.0.0.1')
    await once(socket, 'connect')
    socket.write('GET /v1/waits HTTP/1.1\r\nHost: localhost\r\n\r\n'.repeat(3))
    await vi.waitFor(() => expect(held).toHaveLength(3))
    socket.destroy()
    await vi.waitFor(() => expect(reasons).toHaveLength(3))
    for (const reason of reasons) expect(reason).toMatchObject({ code: 'SINK_UNAVAILABLE' })
    await server.close()
  })

  it('holds more than ten pipelined requests on one connection without a listener warning', async () => {
    const { route, reasons, held } = waitingRoute()
    const { server, address } = await serving(route)
    const warnings: Error[] = []
    const warned = (w: Error) => warnings.push(w)
    process.on('warning', warned)
    const socket = connect(Number(new URL(address).port), '127.0.0.1')
    await once(socket, 'connect')
    socket.write('GET /v1/waits HTTP/1.1\r\nHost: localhost\r\n\r\n'.repeat(16))
    await vi.waitFor(() => expect(held).toHaveLength(16))
    socket.destroy()
    await vi.waitFor(() => expect(reasons).toHaveLength(16))
    await server.close()
    // A warning is emitted on the next tick of the listener that went over the limit.
    await new Promise((resolve) => setImmediate(resolve))
    process.off('warning', warned)
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([])
  })

  it('leaves no listener behind on a keep-alive connection, however many requests it carries', async () => {
    const route: Route = {
      method: 'GET',
      url: '/v1/answers',
      auth: 'none',
      handle: async () => ({ status: 200, body: { ok: true } }),
    }
    const { server, address } = await serving(route)
    const { port } = new URL(address)
    const warnings: Error[] = []
    const warned = (w: Error) => warnings.push(w)
    process.on('warning', warned)
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const sockets = new Set<Socket>()
    for (let i = 0; i < 40; i++) {
      const res = await new Promise<IncomingMessage>((resolve, reject) =>
        get({ port, path: '/v1/answers', agent }, resolve).on('error', reject),
      )
      res.resume()
      await once(res, 'end')
      sockets.add(res.socket)
    }
    agent.destroy()
    await server.close()
    // A warning is emitted on the next tick of the listener that went over the limit.
    await new Promise((resolve) => setImmediate(resolve))
    process.off('warning', warned)
    expect(sockets.size).toBe(1)
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([])
  })

  it('is aborted when the server closes, and the request is answered 503', async () => {
    const { route, reasons, held } = waitingRoute()
    const { server } = makeServer([route])
    const answer = server.inject({ method: 'GET', url: '/v1/waits' })
    await vi.waitFor(() => expect(held).toHaveLength(1))
    const closed = server.close()
    const res = await answer
    await closed
    expect(reasons).toHaveLength(1)
    expect(res.statusCode).toBe(503)
    expect(res.json().error.code).toBe('SINK_UNAVAILABLE')
  })
})
