// Who may call a route of the HTTP server: the shared ingest token, a source's own token and the read
// token (as a bearer token, Firehose's access-key header, or on the Falco route `?token=`, compared in
// constant time, whatever its length), a client
// certificate signed by http.tls.client_ca_file on ingest routes, and reads without any token when the
// server listens on loopback only. Pure: the server asks it about each request's headers and socket.
import { hash, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { HttpConfig } from '../schemas/types.ts'
import { NerveError } from './errors.ts'
import type { IngestSource, Route } from './http-routes.ts'

export type HttpAuth = {
  /** The server listens on loopback only: reads need no token (but a Host header naming loopback). */
  readonly loopbackOnly: boolean
  /** The tokens that open reads. */
  readonly readTokens: readonly Buffer[]
  /** The tokens that open a route, or null when it is open. */
  tokensFor(route: Pick<Route, 'auth' | 'source'>): readonly Buffer[] | null
  /** Whether a request's token, or (when `certOpens`) its client certificate, is one that opens. */
  authorized(
    headers: IncomingHttpHeaders,
    query: Record<string, string | undefined>,
    socket: Socket,
    tokens: readonly Buffer[],
    certOpens: boolean,
  ): boolean
  /**
   * The 401 of a route, saying which token it needs and how to send it; when the request put a token in
   * its URL where none is taken from there, that it must go in the header.
   */
  unauthorized(
    route: Pick<Route, 'auth' | 'source' | 'authHint'>,
    query?: Record<string, string | undefined>,
  ): NerveError
}

/**
 * Whether a route takes its token from a `?token=` query parameter: Falco's only. Its http_output is the one
 * sender that cannot send a header; a token in any other URL would end up in proxies' and servers' logs.
 */
export function takesQueryToken(route: Pick<Route, 'auth' | 'source'>): boolean {
  return route.auth === 'ingest' && route.source === 'falco'
}

export function createHttpAuth(
  config: Pick<HttpConfig, 'host' | 'tls'>,
  secrets: { ingestToken: string; tokens?: Partial<Record<IngestSource | 'read', string>> },
): HttpAuth {
  // An empty token is never one that opens: an empty `?token=` or `Bearer ` would match it.
  const shared = secrets.ingestToken ? [Buffer.from(secrets.ingestToken)] : []
  const tokensOf = (name: IngestSource | 'read') => {
    const t = secrets.tokens?.[name]
    return t ? [...shared, Buffer.from(t)] : shared
  }
  const accepted: Record<IngestSource | 'read', Buffer[]> = {
    falco: tokensOf('falco'),
    cloudtrail: tokensOf('cloudtrail'),
    firehose: tokensOf('firehose'),
    read: tokensOf('read'),
  }
  const loopbackOnly = isLoopbackHost(config.host)
  const certificates = Boolean(config.tls?.client_ca_file)

  return {
    loopbackOnly,
    readTokens: accepted.read,
    tokensFor: (route) => {
      if (route.auth === 'ingest') return route.source ? accepted[route.source] : shared
      if (route.auth === 'read' && !loopbackOnly) return accepted.read
      return null
    },
    authorized: (headers, query, socket, tokens, certOpens) => {
      if (certOpens && certificates && (socket as TLSSocket).authorized === true) return true
      // Each place a token may come in, the usual one (bearer) first: no array is built per request.
      const header = headers.authorization
      if (typeof header === 'string' && isBearer(header) && opens(header.slice(7).trim(), tokens)) return true
      return opens(query.token, tokens) || opens(headers['x-amz-firehose-access-key'], tokens)
    },
    unauthorized: (route, query) => {
      const hint = route.authHint ?? 'Authorization: Bearer <token>'
      const inUrl =
        query?.token !== undefined && !takesQueryToken(route)
          ? ` A ?token= is taken on /v1/falco only (a URL ends up in logs): send it as ${hint}.`
          : ''
      return new NerveError(
        'UNAUTHORIZED',
        route.auth === 'read'
          ? `A valid read token is required (Authorization: Bearer <token>).${inUrl}`
          : `A valid ${route.source ?? 'ingest'} token is required (${hint}).${inUrl}`,
      )
    },
  }
}

/** `Bearer ` in any case: an authentication scheme is case-insensitive (RFC 9110 §11.1). */
function isBearer(header: string): boolean {
  return header.length > 7 && header.charCodeAt(6) === 32 && header.slice(0, 6).toLowerCase() === 'bearer'
}

/**
 * True when a Host header names this machine's loopback: localhost, 127.0.0.0/8 or [::1], with or without
 * a port. A request without one is no browser's (every browser sends Host), so it passes.
 */
export function isLoopbackHostHeader(host: string | undefined): boolean {
  if (host === undefined || host === '') return true
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::\d{1,5})?$/.exec(host)
  if (!m) return false
  const name = (m[1] ?? m[2] ?? '').toLowerCase()
  return (
    name === 'localhost' ||
    name === '::1' ||
    /^127\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)$/.test(name)
  )
}

function isLoopbackHost(host: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(host)
}

// One-shot: a Hash object (its native context, its stream machinery) per request cost about as much as the
// digest itself, on every authorized request.
const sha256 = (data: string | Buffer): Buffer => hash('sha256', data, 'buffer')
/** Each accepted token's digest, made once. */
const tokenDigests = new WeakMap<Buffer, Buffer>()
const digestOf = (token: Buffer) => {
  const known = tokenDigests.get(token)
  if (known !== undefined) return known
  const digest = sha256(token)
  tokenDigests.set(token, digest)
  return digest
}

/**
 * Whether `candidate` is one of `tokens`, compared in constant time: their SHA-256 digests, of one length
 * whatever the lengths of the tokens (comparing only candidates of the token's length told a caller, by the
 * time taken, when it had guessed that length), against every token.
 */
function opens(candidate: string | string[] | undefined, tokens: readonly Buffer[]): boolean {
  if (typeof candidate !== 'string') return false
  const given = sha256(candidate)
  let found = false
  for (const token of tokens) found = timingSafeEqual(given, digestOf(token)) || found
  return found
}
