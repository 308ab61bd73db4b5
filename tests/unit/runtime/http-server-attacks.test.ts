// The watched agent reaches nerve's port from inside the cluster without a token. These talk to a real
// listening server on 127.0.0.1 with raw sockets, as the attacker would.
import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { EventDecoder } from '../../../ingest/decode-events.ts'
import { createFirehoseReceiver } from '../../../ingest/firehose-receiver.ts'
import type { DecodedPublisher } from '../../../ingest/publish-decoded.ts'
import type { Route } from '../../../runtime/http-routes.ts'
import { createHttpServer, type HttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { HttpConfig } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { hasOpenssl, makeTestCertificates } from '../../helpers/test-certificates.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'

const token = 'nrv_test-token-0123456789abcdef'
const falcoToken = 'nrv_falco-node-token-0123456789'
const readToken = 'nrv_read-only-token-0123456789ab'
let bodiesRead = 0
const route = (url: string, source: Route['source']): Route => ({
  method: 'POST',
  url,
  auth: 'ingest',
  source,
  handle: async (req) => {
    bodiesRead++
    return { status: 202, body: { accepted: 1, bytes: req.body.length } }
  },
})
const readRoute: Route = {
  method: 'GET',
  url: '/v1/correlations',
  auth: 'read',
  handle: async () => ({ status: 200, body: { items: [] } }),
}

const open: HttpServer[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
})

async function start(http: Partial<HttpConfig> = {}) {
  const rt = createTestRuntime()
  const server = createHttpServer(
    { ...loadConfig().http, port: 0, ...http },
    { log: rt.log, metrics: rt.metrics, ingestToken: token, tokens: { falco: falcoToken, read: readToken } },
  )
  server.addRoutes([route('/v1/falco', 'falco'), route('/v1/cloudtrail', 'cloudtrail'), readRoute])
  open.push(server)
  const address = new URL(await server.listen())
  return { server, rt, port: Number(address.port) }
}

/** Opens a socket (from a local address of `from`), runs `talk`, and collects what the server says until it closes. */
function exchange(port: number, talk: (socket: Socket) => void, from?: string): Promise<{ text: string }> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', ...(from ? { localAddress: from } : {}) })
    let text = ''
    socket.on('data', (d) => {
      text += d.toString()
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve({ text }))
    socket.on('connect', () => talk(socket))
  })
}

describe('nothing is read before the caller is known', () => {
  it('answers 401 on the headers of an unauthenticated 10 MiB POST, and closes, without reading the body', async () => {
    bodiesRead = 0
    const { port } = await start()
    const { text } = await exchange(port, (socket) => {
      // Headers only: the announced body never comes. Before, the server waited for it (the token was
      // checked after the body was buffered) and this exchange hung.
      socket.write(
        'POST /v1/falco HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n',
      )
      socket.write(Buffer.alloc(64 * 1024, 0x20))
    })
    expect(text).toMatch(/^HTTP\/1\.1 401/)
    expect(text.toLowerCase()).toContain('connection: close')
    expect(bodiesRead).toBe(0)
  })

  it('answers 401 to an unauthenticated 60 MiB Firehose POST, in its shape, and closes before the body is read', async () => {
    const rt = createTestRuntime()
    const server = createHttpServer(
      { ...loadConfig().http, port: 0 },
      { log: rt.log, metrics: rt.metrics, ingestToken: token },
    )
    let decoded = 0
    const firehose = createFirehoseReceiver(loadConfig().http, {
      log: rt.log,
      metrics: rt.metrics,
      now: () => Date.now(),
      decoder: {
        decode: () => {
          decoded++
          throw new Error('never reached')
        },
      } as unknown as EventDecoder,
      publisher: { publish: async () => {} } as unknown as DecodedPublisher,
    })
    server.addRoutes([firehose])
    open.push(server)
    const port = Number(new URL(await server.listen()).port)
    const size = 60 * 1024 * 1024
    let written = 0
    const { text } = await exchange(port, (socket) => {
      socket.write(
        `POST /v1/cloudtrail/firehose HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Amz-Firehose-Request-Id: 0d8c3b7e-6d0a-4b7e-9d55-000000000001\r\nContent-Length: ${size}\r\n\r\n`,
      )
      const chunk = Buffer.alloc(1024 * 1024, 0x20)
      const pump = () => {
        while (written < size && !socket.destroyed) {
          written += chunk.length
          if (!socket.write(chunk)) return void socket.once('drain', pump)
        }
      }
      pump()
    })
    expect(text).toMatch(/^HTTP\/1\.1 401/)
    expect(text.toLowerCase()).toContain('connection: close')
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, string>
    expect(body.requestId).toBe('0d8c3b7e-6d0a-4b7e-9d55-000000000001')
    expect(body.errorMessage).toContain('X-Amz-Firehose-Access-Key')
    // Closed while most of the body was still to come: the server never waited for it.
    expect(written).toBeLessThan(size / 2)
    expect(decoded).toBe(0)
  })

  // fastify reads a request's body before its 404 handler runs: a POST to a path no route has (or a
  // method a route does not take) was buffered up to body_limit_bytes, without a token, on every one of
  // a client's connections (256 × 10 MiB by default).
  it.each([
    ['a path no route has', 'POST /v1/nothing-here'],
    ['a method the route does not take', 'DELETE /v1/falco'],
    ['a POST to a read route', 'POST /v1/correlations'],
    ['a trailing slash', 'POST /v1/falco/'],
  ])(
    'answers 404 on the headers of a 10 MiB body sent to %s, and closes, without reading it',
    async (_what, line) => {
      const { port } = await start()
      const size = 10 * 1024 * 1024
      let written = 0
      const { text } = await exchange(port, (socket) => {
        socket.write(
          `${line} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`,
        )
        const chunk = Buffer.alloc(64 * 1024, 0x20)
        const pump = () => {
          // Slowly: a body that came at once would be read before any answer whatever the server does.
          if (written >= size || socket.destroyed) return
          written += chunk.length
          socket.write(chunk)
          setTimeout(pump, 5)
        }
        pump()
      })
      expect(text).toMatch(/^HTTP\/1\.1 404/)
      expect(text.toLowerCase()).toContain('connection: close')
      expect(written).toBeLessThan(size / 2)
    },
  )

  it('keeps the connection of a 404 without a body (a GET) open', async () => {
    const { server } = await start()
    const res = await server.inject({ method: 'GET', url: '/favicon.ico' })
    expect(res.statusCode).toBe(404)
    expect(res.headers.connection).not.toBe('close')
  })

  // request_timeout is far beyond the test's timeout: a 408 is headers_timeout's.
  it('cuts off a client sending its headers one byte at a time, with a 408 at headers_timeout', async () => {
    const { port } = await start({ headers_timeout: 1_000, request_timeout: 600_000 })
    let timer: NodeJS.Timeout | undefined
    const { text } = await exchange(port, (socket) => {
      const head = `POST /v1/falco HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(1000)}`
      let at = 0
      timer = setInterval(() => {
        if (!socket.destroyed && at < head.length) socket.write(head[at++] as string)
      }, 100)
    })
    clearInterval(timer)
    expect(text).toMatch(/^HTTP\/1\.1 408/)
  })

  // Over TLS the handshake comes before any header: Node's own limit on it is 120 s, which a client that
  // sends nothing (or half a ClientHello) held a connection for, each counted against max_connections.
  // Both that limit and request_timeout are far beyond the test's timeout: a server that closes the
  // connections first applied headers_timeout to the handshake. The test certificates need openssl.
  it.skipIf(!hasOpenssl)(
    'cuts off a TLS client that stalls its handshake, at headers_timeout (skipped without openssl)',
    async () => {
      const certs = makeTestCertificates(tempDir('nerve-tls-stall'))
      const { port } = await start({
        headers_timeout: 1_000,
        request_timeout: 600_000,
        tls: { cert_file: certs.server.cert, key_file: certs.server.key },
      })
      const [silent, partial] = await Promise.all([
        exchange(port, () => {}),
        // The first bytes of a ClientHello record, and nothing after them.
        exchange(port, (socket) => socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]))),
      ])
      // Closed by the server, with nothing said: no HTTP answer comes before a handshake.
      expect([silent.text, partial.text]).toEqual(['', ''])
    },
  )

  it('closes connections beyond max_connections, counted', async () => {
    const { port, rt } = await start({ max_connections: 2 })
    const held = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')]
    await Promise.all(held.map((s) => new Promise((r) => s.on('connect', r))))
    await new Promise((r) => setTimeout(r, 100))
    const third = await exchange(port, (socket) => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'))
    expect(third.text).toBe('')
    for (const s of held) s.destroy()
    const drops = { reason: 'max_connections' }
    expect(await rt.metricValue('nerve_http_connections_dropped_total', drops)).toBe(1)
  })

  // The watched agent opening every connection the server takes, again as each is cut off, leaves none to
  // Falcosidekick, which never sends an alert twice.
  it("closes one client address's connections beyond max_connections_per_client; another client is served", async () => {
    const { port, rt } = await start({ max_connections: 10, max_connections_per_client: 2 })
    const held = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')]
    await Promise.all(held.map((s) => new Promise((r) => s.on('connect', r))))
    await new Promise((r) => setTimeout(r, 100))
    const healthz = (socket: Socket) =>
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    const third = await exchange(port, healthz)
    expect(third.text).toBe('')
    const other = await exchange(port, healthz, '127.0.0.2')
    expect(other.text).toMatch(/^HTTP\/1\.1 200/)
    for (const s of held) s.destroy()
    const drops = { reason: 'max_connections_per_client' }
    expect(await rt.metricValue('nerve_http_connections_dropped_total', drops)).toBe(1)
    // Once its connections close, the client is served again.
    await new Promise((r) => setTimeout(r, 100))
    expect((await exchange(port, healthz)).text).toMatch(/^HTTP\/1\.1 200/)
  })
})

describe('per-source tokens', () => {
  it('a Falco node token posts Falco alerts but not CloudTrail; the shared token posts both', async () => {
    const { server } = await start()
    const post = (url: string, t: string) =>
      server.inject({ method: 'POST', url, payload: '{}', headers: { authorization: `Bearer ${t}` } })
    expect((await post('/v1/falco', falcoToken)).statusCode).toBe(202)
    const refused = await post('/v1/cloudtrail', falcoToken)
    expect(refused.statusCode).toBe(401)
    expect(refused.json().error.message).toContain('cloudtrail token')
    expect((await post('/v1/cloudtrail', token)).statusCode).toBe(202)
    expect((await post('/v1/falco', readToken)).statusCode).toBe(401)
  })

  it('off loopback, reads and /metrics need the read (or shared) token; a source token does not open them', async () => {
    const { server } = await start({ host: '0.0.0.0' })
    const get = (url: string, t?: string) =>
      server.inject({ method: 'GET', url, headers: t ? { authorization: `Bearer ${t}` } : {} })
    for (const url of ['/v1/correlations', '/metrics']) {
      expect((await get(url)).statusCode).toBe(401)
      expect((await get(url, falcoToken)).statusCode).toBe(401)
      expect((await get(url, readToken)).statusCode).toBe(200)
      expect((await get(url, token)).statusCode).toBe(200)
    }
    expect((await get('/healthz')).statusCode).toBe(200)
  })

  // DNS rebinding: a page the operator opens resolves its own name to 127.0.0.1 and reads the API from
  // the operator's browser, same-origin as far as the browser knows. Its requests carry its own name in
  // Host, which no loopback name is; a client of nerve itself names 127.0.0.1, localhost or [::1].
  it('on loopback, reads without a token are refused (403) unless Host names loopback', async () => {
    const { server } = await start({ host: '127.0.0.1' })
    const get = (url: string, host: string, t?: string) =>
      server.inject({
        method: 'GET',
        url,
        headers: { host, ...(t ? { authorization: `Bearer ${t}` } : {}) },
      })
    for (const url of ['/v1/correlations', '/metrics']) {
      for (const host of [
        'localhost',
        'localhost:8080',
        'LOCALHOST:8080',
        '127.0.0.1',
        '127.0.0.1:8080',
        '127.1.2.3:9',
        '[::1]',
        '[::1]:8080',
      ])
        expect((await get(url, host)).statusCode, `${url} ${host}`).toBe(200)
      for (const host of [
        'rebind.attacker.example',
        'rebind.attacker.example:8080',
        '127.0.0.1.attacker.example',
        'localhost.attacker.example:8080',
        '10.0.0.5:8080',
        '[::2]:8080',
      ]) {
        const refused = await get(url, host)
        expect(refused.statusCode, `${url} ${host}`).toBe(403)
        expect(refused.json().error.code).toBe('FORBIDDEN')
        expect(refused.json().error.message).toContain('127.0.0.1')
        expect(refused.json().error.message).toContain('ingest.tokens.read')
      }
      // A client that shows the read (or shared) token is served whatever name it used.
      expect((await get(url, 'nerve.internal:8080', readToken)).statusCode).toBe(200)
      expect((await get(url, 'nerve.internal:8080', token)).statusCode).toBe(200)
      expect((await get(url, 'nerve.internal:8080', falcoToken)).statusCode).toBe(403)
    }
    // Health and the ingest routes are unchanged.
    expect((await get('/healthz', 'rebind.attacker.example')).statusCode).toBe(200)
    const post = await server.inject({
      method: 'POST',
      url: '/v1/falco',
      payload: '{}',
      headers: { host: 'rebind.attacker.example', authorization: `Bearer ${falcoToken}` },
    })
    expect(post.statusCode).toBe(202)
  })
})
