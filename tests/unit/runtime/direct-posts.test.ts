// The common ingest POST is served from node:http's request listener (direct-posts.ts), everything else by
// fastify: which requests take which path, and the same answers from both.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { createDirectPosts, directBytes } from '../../../runtime/direct-posts.ts'
import { NerveError } from '../../../runtime/errors.ts'
import type { Route } from '../../../runtime/http-routes.ts'
import { createHttpServer, type HttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { gate } from '../../helpers/gate.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'

const token = 'nrv_test-token-0123456789abcdef'

const echo: Route = {
  method: 'POST',
  url: '/v1/echo',
  auth: 'ingest',
  handle: async (req) => ({
    status: 202,
    body: { accepted: 1, bytes: req.body.length, text: String(req.body) },
  }),
}

function fakeRequest(method: string, url: string, headers: Record<string, string>) {
  const req = Object.assign(new Readable({ read() {} }), { method, url, headers, socket: {} })
  return req as unknown as IncomingMessage
}

describe('which requests are served directly', () => {
  const direct = createDirectPosts({
    tokenOpens: () => true,
    opens: (_route, req, query) =>
      req.headers.authorization === `Bearer ${token}` || query.token === token || _route.auth === 'none',
    limitOf: (route) => (route.url === '/v1/large' ? 10 * 1024 * 1024 : 100),
    answer: (_route, res) => res,
    failed: () => ({ res: { status: 500, body: {} }, code: 'INTERNAL' }),
    closing: () => false,
  })
  direct.add(echo)
  direct.add({ ...echo, url: '/v1/large' })
  const res = {} as ServerResponse
  const ok = { authorization: `Bearer ${token}`, 'content-length': '10', 'content-type': 'application/json' }
  const served = (method: string, url: string, headers: Record<string, string>) =>
    direct.serve(fakeRequest(method, url, headers), res)

  it('serves a POST to a route with a plain Content-Type (or none), a length within the limit and a token', () => {
    expect(served('POST', '/v1/echo', ok)).toBe(true)
    expect(served('POST', `/v1/echo?token=${token}`, { 'content-length': '10' })).toBe(true)
    expect(served('POST', '/v1/echo', { ...ok, 'content-type': 'text/plain; charset=utf-8' })).toBe(true)
    expect(served('POST', '/v1/echo', { ...ok, 'content-length': '100' })).toBe(true)
  })

  it('leaves to fastify every other request: refusals, odd bodies, other methods and paths', () => {
    expect(served('GET', '/v1/echo', ok)).toBe(false)
    expect(served('POST', '/v1/echo/', ok)).toBe(false)
    expect(served('POST', '/v1/other', ok)).toBe(false)
    expect(served('POST', '/v1/echo', { ...ok, authorization: 'Bearer wrong' })).toBe(false)
    expect(served('POST', '/v1/echo', { ...ok, 'content-length': '101' })).toBe(false)
    expect(served('POST', '/v1/large', { ...ok, 'content-length': String(directBytes) })).toBe(true)
    expect(served('POST', '/v1/large', { ...ok, 'content-length': String(directBytes + 1) })).toBe(false)
    expect(
      served('POST', '/v1/echo', { authorization: `Bearer ${token}`, 'transfer-encoding': 'chunked' }),
    ).toBe(false)
    expect(served('POST', '/v1/echo', { authorization: `Bearer ${token}` })).toBe(false)
    expect(served('POST', '/v1/echo', { ...ok, 'content-type': 'APPLICATION/JSON' })).toBe(false)
    expect(served('POST', '/v1/echo', { ...ok, 'content-type': 'x/y; a="b"' })).toBe(false)
  })
})

describe('the same answers on both paths', () => {
  const makeServer = (routes: Route[]) => {
    const rt = createTestRuntime()
    const server = createHttpServer(loadConfig().http, {
      log: rt.log,
      metrics: rt.metrics,
      ingestToken: token,
    })
    server.addRoutes(routes)
    return { server, rt }
  }
  /** One request served directly (application/json), the same through fastify (a Content-Type it alone takes). */
  const both = async (
    server: HttpServer,
    url: string,
    payload: string,
    headers: Record<string, string> = {},
  ) => {
    const answers = []
    for (const type of ['application/json', 'application/vnd.nerve+json']) {
      const res = await server.inject({
        method: 'POST',
        url,
        payload,
        headers: { ...headers, 'content-type': type },
      })
      const { date: _date, ...rest } = res.headers
      answers.push({ status: res.statusCode, headers: rest, body: res.body })
    }
    expect(answers[0]).toEqual(answers[1])
    return answers[0] as { status: number; headers: Record<string, unknown>; body: string }
  }
  const bearer = { authorization: `Bearer ${token}` }

  it('an accepted body (its bytes as sent), by each way of giving the token, counted by route and status', async () => {
    // Falco's route: the one that takes ?token= too.
    const { server, rt } = makeServer([{ ...echo, source: 'falco' }])
    const body = '{"a":"é ✓"}\n'
    const ok = await both(server, '/v1/echo', body, bearer)
    expect(ok.status).toBe(202)
    expect(JSON.parse(ok.body)).toEqual({ accepted: 1, bytes: Buffer.byteLength(body), text: body })
    expect(ok.headers['content-type']).toBe('application/json; charset=utf-8')
    await both(server, `/v1/echo?token=${token}&x=1`, '{}')
    await both(server, '/v1/echo', '{}', { 'x-amz-firehose-access-key': token })
    expect(await rt.metricValue('nerve_http_requests_total', { route: '/v1/echo', status: '202' })).toBe(6)
  })

  it("a route's error by the table, with Retry-After; an unexpected error as 500", async () => {
    const failing = (err: Error): Route => ({ ...echo, handle: () => Promise.reject(err) })
    const saturated = makeServer([failing(new NerveError('SATURATED', 'busy', { retriable: true }))]).server
    const busy = await both(saturated, '/v1/echo', '{}', bearer)
    expect(busy.status).toBe(429)
    expect(busy.headers['retry-after']).toBe('1')
    const invalid = makeServer([failing(new NerveError('INPUT_INVALID', 'bad', { details: [{ index: 0 }] }))])
    expect(JSON.parse((await both(invalid.server, '/v1/echo', '{}', bearer)).body)).toEqual({
      error: { code: 'INPUT_INVALID', message: 'bad', details: [{ index: 0 }] },
    })
    const broken = makeServer([failing(new Error('boom'))])
    const internal = await both(broken.server, '/v1/echo', '{}', bearer)
    expect(internal.status).toBe(500)
    expect(JSON.parse(internal.body)).toEqual({ error: { code: 'INTERNAL', message: 'Internal error.' } })
    expect(broken.rt.logs.filter((l) => l.error_code === 'INTERNAL')).toHaveLength(2)
  })

  it("errors in a route's own shape (Firehose), a NerveError with the request, anything else as INTERNAL", async () => {
    const shaped = (err: Error): Route => ({
      ...echo,
      handle: () => Promise.reject(err),
      formatError: (e, req) => ({
        status: e.code === 'INTERNAL' ? 500 : 400,
        headers: { 'x-request': String(req.headers['x-request']) },
        body: { errorMessage: e.message, bytes: req.body.length },
      }),
    })
    const invalid = makeServer([shaped(new NerveError('INPUT_INVALID', 'not base64'))]).server
    const bad = await both(invalid, '/v1/echo', '{"records":[]}', { ...bearer, 'x-request': 'r1' })
    expect(bad.status).toBe(400)
    expect(bad.headers['x-request']).toBe('r1')
    expect(JSON.parse(bad.body)).toEqual({ errorMessage: 'not base64', bytes: 14 })
    const broken = makeServer([shaped(new Error('boom'))]).server
    const internal = await both(broken, '/v1/echo', '{"records":[]}', bearer)
    expect(JSON.parse(internal.body)).toEqual({ errorMessage: 'Internal error.', bytes: 0 })
  })

  it('a body shorter than its Content-Length as a 400, counted', async () => {
    const { server, rt } = makeServer([echo])
    const short = await both(server, '/v1/echo', '{"a":1}', { ...bearer, 'content-length': '9' })
    expect(short.status).toBe(400)
    expect(JSON.parse(short.body)).toEqual({
      error: { code: 'INPUT_INVALID', message: 'Request body size did not match Content-Length' },
    })
    expect(await rt.metricValue('nerve_http_requests_total', { route: '/v1/echo', status: '400' })).toBe(2)
  })

  it('an answer without a body as fastify gives it: no length on a 204 or a bodiless 304, a JSON type with its charset', async () => {
    const answering = (res: { status: number; body: unknown; headers?: Record<string, string> }) =>
      makeServer([{ ...echo, handle: async () => res }]).server
    const empty = await both(answering({ status: 204, body: undefined }), '/v1/echo', '{}', bearer)
    expect(empty.status).toBe(204)
    expect(empty.headers['content-length']).toBeUndefined()
    const dropped = await both(answering({ status: 204, body: { a: 1 } }), '/v1/echo', '{}', bearer)
    expect(dropped.headers['content-type']).toBeUndefined()
    expect(dropped.body).toBe('')
    const unchanged = await both(answering({ status: 304, body: undefined }), '/v1/echo', '{}', bearer)
    expect(unchanged.headers['content-length']).toBeUndefined()
    const none = await both(answering({ status: 202, body: undefined }), '/v1/echo', '{}', bearer)
    expect(none.headers['content-length']).toBe('0')
    const typed = answering({
      status: 202,
      body: { a: 1 },
      headers: { 'content-type': 'application/x-ndjson' },
    })
    const ndjson = await both(typed, '/v1/echo', '{}', bearer)
    expect(ndjson.headers['content-type']).toBe('application/x-ndjson; charset=utf-8')
  })

  it('serves no route that fastify refused (added once the server is ready)', async () => {
    const { server } = makeServer([])
    await server.inject('/healthz')
    expect(() => server.addRoutes([{ ...echo, auth: 'none' }])).toThrow(/Cannot add route/)
    const res = await server.inject({
      method: 'POST',
      url: '/v1/echo',
      payload: '{}',
      headers: { 'content-type': 'application/json' },
    })
    expect(res.statusCode).toBe(404)
  })

  it('a text answer as text', async () => {
    const { server } = makeServer([{ ...echo, handle: async () => ({ status: 200, body: 'ok ✓' }) }])
    const res = await both(server, '/v1/echo', '{}', bearer)
    expect(res.body).toBe('ok ✓')
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8')
  })
})

describe('on a socket', () => {
  const open: HttpServer[] = []
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()))
  })
  /** A server with the echo route on a free loopback port. */
  const listening = async () => {
    const rt = createTestRuntime()
    const server = createHttpServer(
      { ...loadConfig().http, port: 0 },
      { log: rt.log, metrics: rt.metrics, ingestToken: token },
    )
    server.addRoutes([echo])
    open.push(server)
    return { rt, port: Number(new URL(await server.listen()).port) }
  }

  it('answers requests pipelined on one keep-alive connection, a body arriving in pieces, in order', async () => {
    const { port } = await listening()
    const request = (body: string) =>
      `POST /v1/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    const text = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      let got = ''
      socket.on('data', (d) => {
        got += d.toString()
        if ((got.match(/HTTP\/1\.1 202/g) ?? []).length === 3) {
          socket.end()
          resolve(got)
        }
      })
      socket.on('connect', () => {
        socket.write(request('{"n":1}') + request('{"n":22}'))
        const third = request('{"n":333}')
        socket.write(third.slice(0, third.length - 5))
        setTimeout(() => socket.write(third.slice(third.length - 5)), 50)
      })
    })
    const bodies: string[] = []
    for (let at = text.indexOf('\r\n\r\n'); at !== -1; at = text.indexOf('\r\n\r\n', at + 4)) {
      const head = text.slice(text.lastIndexOf('HTTP/1.1', at), at)
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1])
      bodies.push(text.slice(at + 4, at + 4 + length))
      at += 4 + length
    }
    expect(bodies.map((b) => JSON.parse(b).text)).toEqual(['{"n":1}', '{"n":22}', '{"n":333}'])
    expect(text.toLowerCase()).toContain('connection: keep-alive')
  })

  it('answers a request in flight when the server closes, with Connection: close, on both paths', async () => {
    for (const type of ['application/json', 'application/vnd.nerve+json']) {
      const rt = createTestRuntime()
      const server = createHttpServer(
        { ...loadConfig().http, port: 0 },
        { log: rt.log, metrics: rt.metrics, ingestToken: token },
      )
      const arrived = gate()
      const answer = gate()
      const slow: Route = {
        ...echo,
        handle: async () => {
          arrived.release()
          await answer.held
          return { status: 202, body: { accepted: 1 } }
        },
      }
      server.addRoutes([slow])
      const port = Number(new URL(await server.listen()).port)
      const socket = connect(port, '127.0.0.1')
      let text = ''
      socket.on('data', (d) => {
        text += d.toString()
      })
      const closed = new Promise((resolve) => socket.on('close', resolve))
      socket.write(
        `POST /v1/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
          `Content-Type: ${type}\r\nContent-Length: 2\r\n\r\n{}`,
      )
      await arrived.held
      const closing = server.close()
      answer.release()
      await closing
      // The server ends the connection itself: before, the answer said keep-alive and close() waited out the
      // idle connection (keepAliveTimeout, 5 s).
      await closed
      expect(text, type).toMatch(/^HTTP\/1\.1 202/)
      expect(text.toLowerCase(), type).toContain('connection: close')
    }
  })

  it('counts a request whose client goes away mid-body as a 400, on both paths', async () => {
    const { rt, port } = await listening()
    for (const type of ['application/json', 'application/vnd.nerve+json']) {
      const socket = connect(port, '127.0.0.1')
      await new Promise((resolve) => socket.on('connect', resolve))
      socket.write(
        `POST /v1/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
          `Content-Type: ${type}\r\nContent-Length: 100\r\n\r\n{"a":`,
      )
      await new Promise((resolve) => setTimeout(resolve, 50))
      socket.destroy()
    }
    await waitFor(
      async () =>
        (await rt.metricValue('nerve_http_requests_total', { route: '/v1/echo', status: '400' })) === 2,
    )
  })
})
