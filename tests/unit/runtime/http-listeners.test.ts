// `http.host: localhost` where localhost is both 127.0.0.1 and ::1: every address nerve listens on has the
// same connection cap and the same request paths. This machine's hosts file may name 127.0.0.1 only, so the
// resolution is injected (dns.lookup, which fastify and Node's listen call too); both addresses are real.
import dns, { type LookupAddress } from 'node:dns'
import { Server as HttpServerClass, request } from 'node:http'
import { connect, createServer, type Server } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Route } from '../../../runtime/http-routes.ts'
import { createHttpServer, type HttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { HttpConfig } from '../../../schemas/types.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'

const token = 'nrv_test-token-0123456789abcdef'
/** Whether each request reached the route by the direct path (it builds no path parameters) or fastify. */
const paths: string[] = []
const echo: Route = {
  method: 'POST',
  url: '/v1/echo',
  auth: 'ingest',
  handle: async (req) => {
    paths.push(req.params === undefined ? 'direct' : 'fastify')
    return { status: 202, body: { accepted: 1 } }
  },
}

type Lookup = (host: string, options: unknown, callback?: unknown) => void
/** Resolves `localhost` to `addresses` (the first alone when one address is asked for). */
function resolveLocalhostTo(addresses: LookupAddress[]) {
  const real = dns.lookup as unknown as Lookup
  vi.spyOn(dns, 'lookup').mockImplementation(((host: string, options: unknown, callback?: unknown) => {
    const done = (typeof options === 'function' ? options : callback) as (...args: unknown[]) => void
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all
    if (host !== 'localhost') return real(host, options, callback)
    const first = addresses[0] as LookupAddress
    if (all) process.nextTick(done, null, addresses)
    else process.nextTick(done, null, first.address, first.family)
  }) as unknown as typeof dns.lookup)
}
const both: LookupAddress[] = [
  { address: '127.0.0.1', family: 4 },
  { address: '::1', family: 6 },
]

const open: HttpServer[] = []
const others: Server[] = []
afterEach(async () => {
  vi.restoreAllMocks()
  await Promise.all(open.splice(0).map((s) => s.close()))
  await Promise.all(others.splice(0).map((s) => new Promise((r) => s.close(r))))
})

async function start(http: Partial<HttpConfig>) {
  const rt = createTestRuntime()
  const server = createHttpServer(
    { ...loadConfig().http, port: 0, ...http },
    { log: rt.log, metrics: rt.metrics, ingestToken: token },
  )
  server.addRoutes([echo])
  open.push(server)
  return { rt, server }
}

/** One POST on a connection of its own, closed after the answer. */
function post(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = '{"a":1}'
    const req = request(
      {
        host,
        port,
        method: 'POST',
        path: '/v1/echo',
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          connection: 'close',
        },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** What a connection opened after `held` ones hears to a GET /healthz ('' when it is closed unanswered). */
async function beyondCap(host: string, port: number, held: number): Promise<string> {
  const sockets = Array.from({ length: held }, () => connect(port, host))
  await Promise.all(sockets.map((s) => new Promise((r) => s.on('connect', r))))
  await new Promise((r) => setTimeout(r, 100))
  const text = await new Promise<string>((resolve) => {
    const socket = connect(port, host)
    let got = ''
    socket.on('data', (d) => {
      got += d.toString()
      socket.end()
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve(got))
    socket.on('connect', () => socket.write(`GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n`))
  })
  for (const s of sockets) s.destroy()
  await new Promise((r) => setTimeout(r, 100))
  return text
}

/** What a connection that sends nothing hears before the server closes it. */
function silentFor(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, host)
    let got = ''
    socket.on('data', (d) => {
      got += d.toString()
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve(got))
  })
}

describe('http.host: localhost', () => {
  it('listens on each address localhost names, each with max_connections and the direct ingest path', async () => {
    resolveLocalhostTo(both)
    const { server } = await start({
      host: 'localhost',
      max_connections: 2,
      headers_timeout: 1_000,
      request_timeout: 600_000,
    })
    const port = Number(new URL(await server.listen()).port)
    for (const host of ['127.0.0.1', '::1']) {
      // A client that sends nothing is cut off with a 408 (request_timeout is far beyond the test's timeout:
      // it is headers_timeout's, checked every second).
      expect(await silentFor(host, port), host).toMatch(/^HTTP\/1\.1 408/)
      paths.length = 0
      expect(await post(host, port), host).toBe(202)
      expect(paths, host).toEqual(['direct'])
      // Before, ::1 was a secondary server of fastify's own: no cap, and every POST through fastify.
      expect(await beyondCap(host, port, 2), host).toBe('')
      expect(await beyondCap(host, port, 1), host).toMatch(/^HTTP\/1\.1 200/)
    }
  })

  it('counts max_connections over every address together', async () => {
    resolveLocalhostTo(both)
    const { server, rt } = await start({ host: 'localhost', max_connections: 2 })
    const port = Number(new URL(await server.listen()).port)
    const held = [connect(port, '127.0.0.1'), connect(port, '::1')]
    await Promise.all(held.map((s) => new Promise((r) => s.on('connect', r))))
    // Before, each address had a cap of its own: two addresses, twice the connections.
    expect(await beyondCap('127.0.0.1', port, 0)).toBe('')
    expect(await beyondCap('::1', port, 0)).toBe('')
    for (const s of held) s.destroy()
    const drops = { reason: 'max_connections' }
    expect(await rt.metricValue('nerve_http_connections_dropped_total', drops)).toBe(2)
  })

  it('refuses a localhost that resolves to an address off loopback (reads would need no token there)', async () => {
    resolveLocalhostTo([...both, { address: '192.0.2.10', family: 4 }])
    const { server } = await start({ host: 'localhost' })
    await expect(server.listen()).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
  })

  it('fails to start when another process holds the port on ::1, rather than let it answer localhost', async () => {
    resolveLocalhostTo(both)
    const squatter = createServer()
    others.push(squatter)
    await new Promise<void>((r) => squatter.listen(0, '::1', r))
    const port = (squatter.address() as { port: number }).port
    const { server } = await start({ host: 'localhost', port })
    await expect(server.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' })
    // Nothing is left listening on 127.0.0.1 either.
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? ''))
      socket.on('connect', () => {
        socket.destroy()
        resolve('connected')
      })
    })
    expect(refused).toBe('ECONNREFUSED')
  })

  it('skips, with a warning, an address this machine does not have (::1 listed, IPv6 turned off)', async () => {
    resolveLocalhostTo(both)
    const listen = HttpServerClass.prototype.listen
    vi.spyOn(HttpServerClass.prototype, 'listen').mockImplementation(function (
      this: HttpServerClass,
      ...args: unknown[]
    ) {
      if ((args[0] as { host?: string }).host !== '::1') return listen.apply(this, args as never)
      const err = Object.assign(new Error('listen EADDRNOTAVAIL: address not available ::1'), {
        code: 'EADDRNOTAVAIL',
      })
      process.nextTick(() => this.emit('error', err))
      return this
    })
    const { server, rt } = await start({ host: 'localhost' })
    const port = Number(new URL(await server.listen()).port)
    expect(await post('127.0.0.1', port)).toBe(202)
    const warned = rt.logs.filter((l) => l.level === 'warn' && l.address === '::1')
    expect(warned).toHaveLength(1)
    expect(warned[0]?.msg).toContain('not on this machine')
  })

  it('listens on one address when localhost names one', async () => {
    resolveLocalhostTo([{ address: '127.0.0.1', family: 4 }])
    const { server } = await start({ host: 'localhost' })
    const address = new URL(await server.listen())
    expect(address.hostname).toBe('127.0.0.1')
    expect(await post('127.0.0.1', Number(address.port))).toBe(202)
  })
})
