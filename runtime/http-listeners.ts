// The addresses nerve's HTTP server listens on, and the node:http (or https) server on each, all built by
// one function: the same request listener (the direct ingest path, then fastify), the same connection cap
// and timeouts. `localhost` names every address the machine resolves it to (127.0.0.1, and ::1 where the
// hosts file says so): each gets a server from here. Left to fastify, ::1 got a secondary server of
// fastify's own making, with neither http.max_connections nor the direct path.
import dns, { type LookupAddress } from 'node:dns'
import { readFileSync } from 'node:fs'
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import https from 'node:https'
import type { Socket } from 'node:net'
import type { HttpConfig } from '../schemas/types.ts'
import { NerveError } from './errors.ts'

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void

/** How long an idle keep-alive connection is kept open between two requests. */
export const keepAliveTimeout = 5_000

/**
 * Builds the server of one address. The TLS files are read once, here, for every server. A client sending
 * its handshake or headers a byte a second, or a body slower than request_timeout, is cut off; the
 * timeouts are checked every second (Node's default interval is 30 s, which would add to the hold). Beyond
 * max_connections the kernel's accepted sockets are closed at once.
 */
export function createServerFactory(
  config: HttpConfig,
  dropped: (reason: DropReason) => void,
): (listener: RequestListener) => Server {
  const gate = createConnectionGate(config, dropped)
  const options = {
    headersTimeout: config.headers_timeout,
    requestTimeout: config.request_timeout,
    connectionsCheckingInterval: 1_000,
    keepAliveTimeout,
  }
  // Over TLS the handshake comes before the headers, and Node gives it 120 s of its own: it must fit in
  // headers_timeout too, or a client sending half a ClientHello holds its connection twelve times longer.
  const tls = config.tls ? { ...tlsOptions(config.tls), handshakeTimeout: config.headers_timeout } : undefined
  return (listener) => {
    const server = tls
      ? https.createServer({ ...tls, ...options }, listener)
      : http.createServer(options, listener)
    server.maxConnections = config.max_connections
    server.keepAliveTimeout = keepAliveTimeout
    server.requestTimeout = config.request_timeout
    // Node closes a connection beyond its own server's maxConnections before any JavaScript sees it.
    server.on('drop', () => dropped('max_connections'))
    server.on('connection', gate)
    return server
  }
}

export type DropReason = 'max_connections' | 'max_connections_per_client'

/**
 * Counts the connections of every address's server together, and each client address's apart: a
 * connection beyond http.max_connections in all, or beyond http.max_connections_per_client from its
 * address, is closed as it arrives. So one client (the watched agent) cannot take every connection and
 * leave none to Falcosidekick, and two addresses (localhost's) do not double the cap.
 */
function createConnectionGate(
  config: Pick<HttpConfig, 'max_connections' | 'max_connections_per_client'>,
  dropped: (reason: DropReason) => void,
): (socket: Socket) => void {
  let open = 0
  const perClient = new Map<string, number>()
  return (socket) => {
    const client = socket.remoteAddress ?? ''
    const fromClient = perClient.get(client) ?? 0
    const reason: DropReason | undefined =
      open >= config.max_connections
        ? 'max_connections'
        : fromClient >= config.max_connections_per_client
          ? 'max_connections_per_client'
          : undefined
    if (reason !== undefined) {
      dropped(reason)
      socket.destroy()
      return
    }
    open++
    perClient.set(client, fromClient + 1)
    socket.once('close', () => {
      open--
      const left = (perClient.get(client) ?? 1) - 1
      if (left === 0) perClient.delete(client)
      else perClient.set(client, left)
    })
  }
}

/**
 * The addresses to listen on for http.host: every address `localhost` resolves to (IPv4 first: the one
 * every machine has is listened on first), any other host as it is (Node listens on the first address a
 * name resolves to). Reads are served without a token while the host is loopback, so a `localhost` that
 * resolves to anything else is refused.
 */
export async function listenAddresses(host: string): Promise<string[]> {
  if (host !== 'localhost') return [host]
  const found = await new Promise<LookupAddress[]>((resolve, reject) =>
    dns.lookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
  )
  const ordered = [...found].sort((a, b) => a.family - b.family).map((a) => a.address)
  const addresses = [...new Set(ordered)]
  const foreign = addresses.filter((a) => !isLoopbackAddress(a))
  if (addresses.length === 0 || foreign.length > 0)
    throw new NerveError(
      'CONFIG_INVALID',
      `http.host is localhost, which resolves here to ${JSON.stringify(addresses)}, not only loopback` +
        ' addresses: reads are served without a token on loopback. Set http.host to 127.0.0.1 or ::1.',
    )
  return addresses
}

/** Listens on host:port; an address this machine does not have (::1 without IPv6) is said as such. */
export function listenOn(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port }, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/** Whether a listen error means the address is not on this machine (::1 listed, IPv6 turned off). */
export function isAddressUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT'
}

/** Stops accepting and resolves once the server's connections are gone (idle keep-alive ones at once). */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()))
}

function isLoopbackAddress(address: string): boolean {
  return /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i.test(address) || address === '::1'
}

function tlsOptions(tls: NonNullable<HttpConfig['tls']>) {
  return {
    cert: readFileSync(tls.cert_file),
    key: readFileSync(tls.key_file),
    ...(tls.client_ca_file
      ? { ca: readFileSync(tls.client_ca_file), requestCert: true, rejectUnauthorized: false }
      : {}),
  }
}
