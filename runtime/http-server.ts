// The one HTTP server: a route table filled by the stages, auth for write routes, body limits,
// /healthz /readyz /metrics, and the only table that maps error codes to HTTP status.
import type { Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import Fastify, { type FastifyReply, type FastifyRequest, LogController } from 'fastify'
import injectRequest, { type InjectOptions, type Response as InjectResponse } from 'light-my-request'
import type { HttpConfig } from '../schemas/types.ts'
import { createConnectionClose } from './connection-close.ts'
import { createDirectPosts } from './direct-posts.ts'
import { type ErrorCode, isNerveError, NerveError } from './errors.ts'
import { createHttpAuth, isLoopbackHostHeader } from './http-auth.ts'
import {
  closeServer,
  createServerFactory,
  isAddressUnavailable,
  listenAddresses,
  listenOn,
  type RequestListener,
} from './http-listeners.ts'
import type { Logger } from './logger.ts'
import type { BoundCounter, Metrics } from './metrics.ts'

/** HTTP status per error code: the single table (fastify style). */
export const httpStatusByCode: Record<ErrorCode, number> = {
  INPUT_INVALID: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  SATURATED: 429,
  BUS_UNAVAILABLE: 503,
  BUS_CLOSED: 503,
  STORAGE_FULL: 507,
  SINK_UNAVAILABLE: 503,
  SINK_REJECTED: 502,
  STATE_OVERFLOW: 503,
  CONFIG_INVALID: 500,
  INTERNAL: 500,
}

const retryAfterSeconds: Partial<Record<ErrorCode, number>> = {
  SATURATED: 1,
  BUS_UNAVAILABLE: 5,
  BUS_CLOSED: 5,
  STORAGE_FULL: 30,
  SINK_UNAVAILABLE: 5,
}

export type RouteRequest = {
  /** Raw body bytes (write routes); decoding, decompression and parsing are the route's business. */
  body: Buffer
  headers: Record<string, string | string[] | undefined>
  query: Record<string, string | undefined>
  /** Path parameters of routes such as `/v1/incidents/:id`. */
  params?: Record<string, string | undefined>
  /** Wall-clock time the request arrived, epoch ms. */
  receivedAt: number
  /**
   * Set by the server on an ingest route's request: whether the token the request showed (never a client
   * certificate) also opens the routes of `source`. The Falco route asks it of a cloudtrail-plugin alert.
   */
  tokenOpens?: (req: RouteRequest, source: IngestSource) => boolean
  /**
   * Aborted (its reason a NerveError) once the answer is no longer wanted: the client closed its connection,
   * or the server is closing. A route that queues work (the store's reads) drops it then.
   */
  signal?: AbortSignal
  /** The connection it came on (its socket): what one connection holds can be bounded by it. */
  connection?: object
}

export type RouteResponse = { status: number; body: unknown; headers?: Record<string, string> }

/** Source kinds that may each have their own token, so a Falco node cannot post CloudTrail. */
export type IngestSource = 'falco' | 'cloudtrail' | 'firehose'

export type Route = {
  method: 'GET' | 'POST'
  url: string
  /**
   * `ingest`: needs the ingest token, or the token of the route's `source` (bearer, ?token=,
   * X-Amz-Firehose-Access-Key), or (the Falco route only) a verified client cert.
   * `read`: reads that show identifiers (ARNs, access key ids, command lines): open while the server listens
   * on loopback only and the request's Host names loopback (not a DNS-rebinding page's name), the read
   * token or the ingest token otherwise.
   * Checked on the request line and headers, before any body byte is read.
   */
  auth: 'ingest' | 'read' | 'none'
  /** The source kind of an ingest route: its own token (ingest.tokens.<source>) also opens it. */
  source?: IngestSource
  handle(req: RouteRequest): Promise<RouteResponse>
  /** Answers errors its own way (Firehose expects its own body shape). */
  formatError?(err: NerveError, req: RouteRequest): RouteResponse
  /** Largest body this route takes, when not http.body_limit_bytes (Firehose sends up to 64 MiB). */
  bodyLimit?: number
  /** How a client of this route sends the token, said in the 401 (Firehose: its access key header). */
  authHint?: string
}

export type ReadinessCheck = () => { ok: boolean; detail?: string }

export type HttpServer = {
  addRoutes(routes: readonly Route[]): void
  addReadinessCheck(name: string, check: ReadinessCheck): void
  listen(): Promise<string>
  /** Stops accepting, waits for in-flight requests to finish. */
  close(): Promise<void>
  /** For tests: requests without a port (light-my-request, as fastify's inject), through the same listener. */
  inject(options: InjectOptions | string): Promise<InjectResponse>
}

export type HttpServerDeps = {
  log: Logger
  metrics: Metrics
  /** The shared ingest token: opens every ingest route, and reads off loopback. */
  ingestToken: string
  /** Narrower tokens: one per source kind (that route only), and `read` (reads only). */
  tokens?: Partial<Record<IngestSource | 'read', string>>
}

export function createHttpServer(config: HttpConfig, deps: HttpServerDeps): HttpServer {
  let closing = false
  /** Requests fastify's handlers hold: closing aborts their signals, so queued work is answered, not run. */
  const inFlight = new Set<AbortController>()
  const connectionClose = createConnectionClose()
  /** fastify's own handler (its router), for every request the direct path leaves to it. */
  let fastifyHandler: RequestListener | undefined
  const listener: RequestListener = (req, res) => {
    if (closing || !direct.serve(req, res)) (fastifyHandler as RequestListener)(req, res)
  }
  // Every address's server is made here, fastify's included: the same listener, cap and timeouts on each.
  const dropped = deps.metrics.counter(
    'nerve_http_connections_dropped_total',
    'Connections closed as they arrived, by the limit they were over.',
    ['reason'],
  )
  const droppedBy = {
    max_connections: deps.metrics.bind(dropped, { reason: 'max_connections' }),
    max_connections_per_client: deps.metrics.bind(dropped, { reason: 'max_connections_per_client' }),
  }
  const newServer = createServerFactory(config, (reason) => droppedBy[reason].inc())
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'http_server' }),
    logController: new LogController({ disableRequestLogging: true }),
    // Requests are not logged one by one, so no request needs a child logger of its own (pino builds one
    // per request otherwise): every request logs through the server's.
    childLoggerFactory: (logger) => logger,
    bodyLimit: config.body_limit_bytes,
    forceCloseConnections: false,
    return503OnClosing: true,
    // The server is ours (below); this only tells fastify to say https in the addresses it logs and returns.
    ...(config.tls ? { https: true } : {}),
    serverFactory: (handler) => {
      fastifyHandler = handler
      return newServer(listener)
    },
  })
  /** The servers of the addresses after the first (fastify listens on the first): `localhost`'s ::1. */
  const more: Server[] = []
  const checks = new Map<string, ReadinessCheck>()
  const requests = deps.metrics.counter('nerve_http_requests_total', 'HTTP requests by route and status.', [
    'route',
    'status',
  ])
  /**
   * The series of each route and status, bound once (metrics.bind: prom-client hashes a label object per
   * inc()), found by the route's own string and the status number: no key is built per request.
   */
  const bound = new Map<string, Map<number, BoundCounter>>()
  const count = (route: string, status: number) => {
    let byStatus = bound.get(route)
    if (!byStatus) {
      byStatus = new Map()
      bound.set(route, byStatus)
    }
    let series = byStatus.get(status)
    if (!series) {
      // Bounded: routes are the table's (or 'unmatched'), statuses the few of httpStatusByCode.
      series = deps.metrics.bind(requests, { route, status: String(status) })
      byStatus.set(status, series)
    }
    series.inc()
  }
  const auth = createHttpAuth(config, deps)
  const tokenOpens = (req: RouteRequest, source: IngestSource): boolean =>
    auth.authorized(req.headers, req.query, noSocket, auth.tokensFor({ auth: 'ingest', source }) ?? [], false)

  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))

  type FastifyError = Error & { statusCode?: number; code?: string }
  /** Any error of a request as a NerveError; fastify's own (body too large, bad length) by their status. */
  const asNerveError = (err: FastifyError, bodyLimit: number | undefined): NerveError => {
    if (isNerveError(err)) return err
    if (err.statusCode === 413) {
      // The route's own limit when it has one (Firehose: 64 MiB), else http.body_limit_bytes.
      const limit = bodyLimit ?? config.body_limit_bytes
      return new NerveError('PAYLOAD_TOO_LARGE', `Request body is over ${limit} bytes.`)
    }
    if (err.statusCode && err.statusCode < 500) return new NerveError('INPUT_INVALID', err.message)
    deps.log.error({ err, error_code: 'INTERNAL' }, 'Request failed unexpectedly.')
    return new NerveError('INTERNAL', 'Internal error.')
  }
  app.setErrorHandler((err: FastifyError, req, reply) =>
    sendError(reply, asNerveError(err, req.routeOptions.bodyLimit)),
  )

  const notFound = (req: FastifyRequest) =>
    new NerveError('NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]}.`)
  app.setNotFoundHandler((req, reply) => sendError(reply, notFound(req)))
  // Answered on the request line and headers, as a 401 is: fastify reads a body before its not-found
  // handler runs, so a POST to a path no route has was buffered up to body_limit_bytes without a token.
  // A request announcing a body has its connection closed (the unread body would follow on it).
  app.addHook('onRequest', (req, reply, done) => {
    if (!req.is404) return done()
    const length = req.headers['content-length']
    if (req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0'))
      return done()
    reply.header('connection', 'close')
    sendError(reply, notFound(req))
  })

  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_req, reply) => {
    const results = Object.fromEntries([...checks].map(([name, check]) => [name, check()]))
    const ok = Object.values(results).every((r) => r.ok)
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready', checks: results })
  })
  /**
   * `read`: the read API takes its token as a bearer only. A URL's `?token=` is for Falco's http_output,
   * which cannot send headers; a read token in a URL would land in shell history, proxies' logs and the
   * console's address bar.
   */
  const authorized = (req: FastifyRequest, tokens: readonly Buffer[], certOpens: boolean, read: boolean) =>
    auth.authorized(
      req.headers,
      read ? noQuery : (req.query as Record<string, string | undefined>),
      req.raw.socket,
      tokens,
      certOpens,
    )

  const listeningPort = () => {
    const address = app.server.address()
    return typeof address === 'object' && address !== null ? address.port : config.port
  }

  const foreignHost = (host: string | undefined) =>
    new NerveError(
      'FORBIDDEN',
      `Reads without a token are served only to a loopback name, and this request names ${JSON.stringify(host?.slice(0, 100))}` +
        ' (a web page can reach a loopback port under its own name by DNS rebinding). Use' +
        ` http://127.0.0.1:${listeningPort()}, localhost or [::1], or set ingest.tokens.read and send it` +
        ' (Authorization: Bearer <token>).',
    )
  /**
   * Runs on the request line and headers, before fastify reads a byte of the body: an unauthenticated
   * caller is answered 401 and its connection closed, so a 10 MiB body is never buffered. On loopback a
   * read without a token must name loopback in Host, or it is answered 403.
   */
  const checkAuth = (route: Pick<Route, 'url' | 'auth' | 'source' | 'authHint' | 'formatError'>) => {
    const tokens = auth.tokensFor(route)
    const hostChecked = route.auth === 'read' && auth.loopbackOnly
    // A callback hook, not an async one: a request that passes costs no promise and no microtask.
    return (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
      if (hostChecked) {
        const host = req.headers.host
        if (isLoopbackHostHeader(host) || authorized(req, auth.readTokens, false, true)) return done()
        reply.header('connection', 'close')
        return done(foreignHost(host))
      }
      if (tokens === null || authorized(req, tokens, certOpens(route), route.auth === 'read')) return done()
      reply.header('connection', 'close')
      const err = auth.unauthorized(route)
      if (!route.formatError) return done(err)
      // Answered here: done() is not called, so the request goes no further.
      const res = route.formatError(err, {
        body: Buffer.alloc(0),
        headers: req.headers,
        query: req.query as Record<string, string | undefined>,
        receivedAt: Date.now(),
      })
      count(route.url, res.status)
      reply
        .code(res.status)
        .headers(res.headers ?? {})
        .send(res.body)
    }
  }

  app.get('/metrics', { onRequest: checkAuth({ auth: 'read', url: '/metrics' }) }, async (_req, reply) =>
    reply.header('content-type', deps.metrics.registry.contentType).send(await deps.metrics.render()),
  )

  const routeErrorHandler =
    (route: Route, format: NonNullable<Route['formatError']>) =>
    (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
      const error = asNerveError(err, req.routeOptions.bodyLimit)
      const res = format(error, {
        body: Buffer.alloc(0),
        headers: req.headers,
        query: req.query as Record<string, string | undefined>,
        receivedAt: Date.now(),
      })
      return answer(route, reply, res, error.code)
    }

  /** A route's answer: Retry-After for a saturation code, the request counted by route and status. */
  const counted = (route: Route, res: RouteResponse, code?: NerveError['code']): RouteResponse => {
    const retry = code === undefined ? undefined : retryAfterSeconds[code]
    if (retry) res.headers = { 'retry-after': String(retry), ...res.headers }
    count(route.url, res.status)
    return res
  }
  const answer = (route: Route, reply: FastifyReply, res: RouteResponse, code?: NerveError['code']) => {
    counted(route, res, code)
    reply.code(res.status)
    if (res.headers) reply.headers(res.headers)
    return reply.send(res.body)
  }

  /**
   * The common POST (an ingest request) is served by direct-posts.ts from the server's request listener;
   * everything else, and every refusal before the handler (401, 413, a request while closing), by fastify.
   */
  const direct = createDirectPosts({
    opens: (route, req, query) => {
      if (route.auth === 'read') return false
      const tokens = auth.tokensFor(route)
      return tokens === null || auth.authorized(req.headers, query, req.socket, tokens, certOpens(route))
    },
    limitOf: (route) => route.bodyLimit ?? config.body_limit_bytes,
    answer: counted,
    failed: (route, err, request) => {
      // As the route's handler and fastify's error handlers below: the route's own shape for a NerveError
      // (with the request), for anything else the error as a NerveError in the route's shape or the table's.
      const error = asNerveError(err as FastifyError, route.bodyLimit)
      if (route.formatError)
        return {
          res: route.formatError(error, isNerveError(err) ? request : { ...request, body: Buffer.alloc(0) }),
          code: error.code,
        }
      return { res: errorAnswer(error), code: error.code }
    },
    closing: () => closing,
    tokenOpens,
  })
  // As on the direct path: an answer given once the server is closing closes its connection (fastify's
  // 503 to a request that arrives while closing already does).
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
  const addRoutes = (routes: readonly Route[]) => {
    for (const route of routes) {
      app.route({
        method: route.method,
        url: route.url,
        ...(route.bodyLimit ? { bodyLimit: route.bodyLimit } : {}),
        onRequest: checkAuth(route),
        // fastify's own errors (a body over the limit) in the route's shape too: Firehose reads only its own.
        ...(route.formatError ? { errorHandler: routeErrorHandler(route, route.formatError) } : {}),
        handler: async (req, reply) => {
          const abandoned = new AbortController()
          const left = () => {
            inFlight.delete(abandoned)
            if (!reply.raw.writableEnded)
              abandoned.abort(new NerveError('SINK_UNAVAILABLE', 'The client closed its connection.'))
          }
          inFlight.add(abandoned)
          // The socket's close, not the reply's: Node closes only the reply the socket is answering, and
          // the requests a client pipelined behind it would run for a client that left. One listener per
          // connection for all of them (connection-close.ts), off once answered. A client that
          // left before the handler ran (its socket already destroyed) is gone as well.
          const socket = req.raw.socket
          if (socket?.destroyed) left()
          const unwatch = socket && !socket.destroyed ? connectionClose.watch(socket, left) : undefined
          const request: RouteRequest = {
            body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
            headers: req.headers,
            query: req.query as Record<string, string | undefined>,
            params: req.params as Record<string, string | undefined>,
            receivedAt: Date.now(),
            tokenOpens,
            signal: abandoned.signal,
            ...(socket ? { connection: socket } : {}),
          }
          try {
            return answer(route, reply, await route.handle(request))
          } catch (err) {
            if (!isNerveError(err) || !route.formatError) throw err
            return answer(route, reply, route.formatError(err, request), err.code)
          } finally {
            unwatch?.()
            inFlight.delete(abandoned)
          }
        },
      })
      // After fastify took it: a route fastify refuses (added once the server is ready) is served by neither.
      if (route.method === 'POST') direct.add(route)
    }
  }

  const sendError = (reply: FastifyReply, err: NerveError) => {
    const status = httpStatusByCode[err.code]
    const retry = retryAfterSeconds[err.code]
    if (retry) reply.header('retry-after', String(retry))
    count(reply.request.routeOptions.url ?? 'unmatched', status)
    return reply.code(status).send(errorAnswer(err).body)
  }

  /** Another address, on the port fastify's server got; fastify's answers to malformed requests too. */
  const listenMore = async (host: string) => {
    const server = newServer(listener)
    for (const onClientError of app.server.listeners('clientError'))
      server.on('clientError', onClientError as (...args: unknown[]) => void)
    try {
      await listenOn(server, host, listeningPort())
    } catch (err) {
      if (!isAddressUnavailable(err)) throw err
      deps.log.warn(
        { component: 'http_server', address: host, err },
        'An address of http.host is not on this machine; not listening on it.',
      )
      return
    }
    more.push(server)
    const at = server.address() as AddressInfo
    const url = `${config.tls ? 'https' : 'http'}://${at.family === 'IPv6' ? `[${at.address}]` : at.address}:${at.port}`
    deps.log.info({ component: 'http_server', address: url }, 'Listening on another address of http.host.')
  }

  const close = async () => {
    closing = true
    for (const request of inFlight)
      request.abort(
        new NerveError('SINK_UNAVAILABLE', 'nerve is closing; retry once it is back.', { retriable: true }),
      )
    inFlight.clear()
    await Promise.all([app.close(), ...more.splice(0).map(closeServer)])
  }

  return {
    addRoutes,
    addReadinessCheck: (name, check) => void checks.set(name, check),
    listen: async () => {
      const [first, ...others] = await listenAddresses(config.host)
      const address = await app.listen({ host: first, port: config.port })
      try {
        for (const host of others) await listenMore(host)
      } catch (err) {
        await close()
        throw err
      }
      return address
    },
    close,
    inject: async (options) => {
      await app.ready()
      return injectRequest(listener, options)
    },
  }
}

/** No socket: a token, never a certificate, is asked about (certOpens false). */
const noSocket = {} as Socket
const noQuery: Record<string, string | undefined> = Object.freeze({})

/**
 * Whether a verified client certificate opens a route: the Falco route (and an ingest route of no source
 * kind) only. Falco's http_output is the one sender that cannot send a header; a certificate that opened
 * the CloudTrail routes too let a Falco node post forged CloudTrail, which its own token cannot.
 */
function certOpens(route: Pick<Route, 'auth' | 'source'>): boolean {
  return route.auth === 'ingest' && (route.source === undefined || route.source === 'falco')
}

/** The answer of the error table: the code's status, and `{ error: { code, message, details? } }`. */
export function errorAnswer(err: NerveError): RouteResponse {
  const body: Record<string, unknown> = { code: err.code, message: err.message }
  if (err.details !== undefined) body.details = err.details
  return { status: httpStatusByCode[err.code], body: { error: body } }
}
