// On SIGTERM the server stops accepting connections but answers every request it can still read: a request
// read before or during the stop is handled as any other (Falcosidekick never retries, so a 503 or a reset is
// an alert lost), no connection is closed under a request on its way, and only what outlasts the drain is refused, in
// nerve's 503 shape with Retry-After and Connection: close.
import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { Route } from '../../../runtime/http-routes.ts'
import { createHttpServer, type HttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { gate } from '../../helpers/gate.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'

const token = 'nrv_test-token-0123456789abcdef'
const alert = '{"output":"shell in pod-1","priority":"Warning","rule":"Terminal shell in container"}'
/** application/json is served by the direct path, any other type by fastify: both are asked. */
const types = ['application/json', 'application/vnd.nerve+json']
const request = (type: string, body = alert) =>
  `POST /v1/falco HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
  `Content-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`

type Client = { socket: Socket; text(): string; closed: Promise<void> }
async function client(port: number): Promise<Client> {
  const socket = connect(port, '127.0.0.1')
  let text = ''
  socket.on('data', (d) => {
    text += d.toString()
  })
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  await new Promise((resolve) => socket.once('connect', resolve))
  return { socket, text: () => text, closed }
}

const servers: HttpServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close().catch(() => {})
})

/** A server whose Falco route answers 202, once the promise given to holdWith (if any) resolves. */
async function serving(opts: { drainMs?: number } = {}) {
  const rt = createTestRuntime()
  const server = createHttpServer(
    { ...loadConfig().http, port: 0 },
    { log: rt.log, metrics: rt.metrics, ingestToken: token, ...opts },
  )
  servers.push(server)
  const arrived: number[] = []
  let hold: Promise<void> | undefined
  const route: Route = {
    method: 'POST',
    url: '/v1/falco',
    auth: 'ingest',
    source: 'falco',
    handle: async () => {
      arrived.push(arrived.length)
      const waiting = hold
      if (waiting) await waiting
      return { status: 202, body: { accepted: 1 } }
    },
  }
  server.addRoutes([route])
  const port = Number(new URL(await server.listen()).port)
  const holdWith = (next: Promise<void> | undefined) => {
    hold = next
  }
  return { server, port, arrived, holdWith, rt }
}

describe('the HTTP server stopping', () => {
  it('answers as any other a request whose headers are read once the stop began, on both paths', async () => {
    for (const type of types) {
      const { server, port, arrived, holdWith } = await serving()
      // One request in the handler holds the stop, as a publish waiting for the disk does.
      const busy = await client(port)
      const { held, release } = gate()
      holdWith(held)
      busy.socket.write(request('application/json'))
      await waitFor(() => arrived.length === 1, { what: 'the first request in its handler' })
      holdWith(undefined)
      // A sender that had begun its request when SIGTERM came: the rest of it arrives during the stop.
      const late = await client(port)
      const whole = request(type)
      late.socket.write(whole.slice(0, 20))
      await waitFor(() => late.socket.bytesWritten >= 20, { what: 'the first bytes sent' })
      const closing = server.close()
      late.socket.write(whole.slice(20))
      await late.closed
      release()
      await closing
      expect(late.text(), type).toMatch(/^HTTP\/1\.1 202/)
      expect(late.text().toLowerCase(), type).toContain('connection: close')
      expect(busy.text(), type).toMatch(/^HTTP\/1\.1 202/)
    }
  })

  it('answers the requests sent during the stop on connections accepted before it, fresh or kept alive', async () => {
    for (const type of types) {
      const { server, port, arrived, holdWith } = await serving()
      // Accepted, nothing sent yet (Falcosidekick's new connection, its request still in flight).
      const fresh = await client(port)
      // Served once, then idle between requests (keep-alive).
      const idle = await client(port)
      idle.socket.write(request(type))
      await waitFor(() => /\r\n\r\n\{"accepted":1\}$/.test(idle.text()), { what: 'the idle one served' })
      // Accepted after the fresh one, so the server has taken both when this one reaches its handler.
      const busy = await client(port)
      const { held, release } = gate()
      holdWith(held)
      busy.socket.write(request('application/json'))
      await waitFor(() => arrived.length === 2, { what: 'the busy request in its handler' })
      holdWith(undefined)
      const closing = server.close()
      // Both send as the stop begins: neither connection may be closed under its request.
      const served = idle.text().length
      idle.socket.write(request(type))
      fresh.socket.write(request(type))
      await Promise.all([fresh.closed, idle.closed])
      release()
      await closing
      for (const answer of [fresh.text(), idle.text().slice(served)]) {
        expect(answer, type).toMatch(/^HTTP\/1\.1 202/)
        expect(answer.toLowerCase(), type).toContain('connection: close')
      }
      expect(busy.text(), type).toMatch(/^HTTP\/1\.1 202/)
    }
  })

  it('closes the connections that sent no request, idle or trickling headers, while a request holds the stop', async () => {
    const { server, port, arrived, holdWith } = await serving({ drainMs: 60_000 })
    const busy = await client(port)
    const { held, release } = gate()
    holdWith(held)
    busy.socket.write(request('application/json'))
    await waitFor(() => arrived.length === 1, { what: 'the first request in its handler' })
    // Anyone may open these: no token is asked before a request is read.
    const idle = await client(port)
    const trickle = await client(port)
    trickle.socket.write('POST /v1/falco HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: a')
    let closed = 0
    for (const c of [idle, trickle]) void c.closed.then(() => closed++)
    const stopped = server.close()
    // Not the whole drain (a minute here): a second or so past the stop.
    await waitFor(() => closed === 2, {
      what: 'the connections with no request read to close',
      timeoutMs: 5_000,
    })
    expect(busy.text()).toBe('')
    release()
    await stopped
    expect(busy.text()).toMatch(/^HTTP\/1.1 202/)
  })

  it("refuses in nerve's 503 shape only a request that outlasts the drain, and never leaves one unanswered", async () => {
    const { server, port, arrived, holdWith, rt } = await serving({ drainMs: 200 })
    const stuck = await client(port)
    holdWith(new Promise<void>(() => {}))
    stuck.socket.write(request('application/json'))
    await waitFor(() => arrived.length === 1, { what: 'the request in its handler' })
    await server.close()
    await stuck.closed
    const [head, body] = stuck.text().split('\r\n\r\n')
    expect(head).toMatch(/^HTTP\/1\.1 503/)
    expect(head?.toLowerCase()).toContain('retry-after: 5')
    expect(head?.toLowerCase()).toContain('connection: close')
    expect(JSON.parse(body as string)).toMatchObject({ error: { code: 'BUS_CLOSED' } })
    expect(rt.logs.filter((l) => /Refused requests/.test(l.msg))).toEqual([
      expect.objectContaining({ level: 'warn', count: 1 }),
    ])
  })

  it("answers the requests in flight in nerve's 503 shape when told to stop at once (a second SIGTERM)", async () => {
    const { server, port, arrived, holdWith } = await serving()
    const stuck = await client(port)
    holdWith(new Promise<void>(() => {}))
    stuck.socket.write(request('application/vnd.nerve+json'))
    await waitFor(() => arrived.length === 1, { what: 'the request in its handler' })
    void server.close()
    await server.refuseInFlight()
    await stuck.closed
    expect(stuck.text()).toMatch(/^HTTP\/1\.1 503/)
    expect(stuck.text()).toContain('"code":"BUS_CLOSED"')
  })
})

describe('the HTTP server stopping under a burst', () => {
  it('answers every request of a burst whose connections were on their way when the stop came', async () => {
    const { server, port } = await serving()
    const clients = Array.from({ length: 30 }, () => {
      const socket = connect(port, '127.0.0.1')
      let text = ''
      socket.on('data', (d) => {
        text += d.toString()
      })
      socket.on('error', () => {})
      socket.on('connect', () => socket.write(request('application/json')))
      return new Promise<string>((resolve) => socket.on('close', () => resolve(text)))
    })
    // SIGTERM as the senders connect: their connections are queued by the kernel, not yet taken by nerve.
    await new Promise((resolve) => setImmediate(resolve))
    await server.close()
    const answers = await Promise.all(clients)
    expect(answers.map((a) => a.slice(0, 12))).toEqual(answers.map(() => 'HTTP/1.1 202'))
  })
})
