// The one HTTP server: a route table filled by the stages, auth for write routes, body limits,
// /healthz /readyz /metrics. The routes' contract and the error table: http-routes.ts.
import type { Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import Fastify, { type FastifyReply, type FastifyRequest, LogController } from 'fastify'
import type { InjectOptions, Response as InjectResponse } from 'light-my-request'
import type { HttpConfig } from '../schemas/types.ts'
import { createConnectionClose } from './connection-close.ts'
import { createConnectionDrain } from './connection-drain.ts'
import { createDirectPosts } from './direct-posts.ts'
import { isNerveError, NerveError } from './errors.ts'
import { createHttpAuth, isLoopbackHostHeader, takesQueryToken } from './http-auth.ts'
import {
  closeServer,
  createServerFactory,
  isAddressUnavailable,
  listenAddresses,
  listenOn,
  type RequestListener,
} from './http-listeners.ts'
import { createRequestCounter } from './http-request-counter.ts'
import {
  errorAnswer,
  httpStatusByCode,
  type IngestSource,
  type ReadinessCheck,
  type Route,
  type RouteRequest,
  type RouteResponse,
  retryAfterSeconds,
} from './http-routes.ts'
import type { Logger } from './logger.ts'
import type { Metrics } from './metrics.ts'
import { readAnswerHeaders } from './read-route.ts'
import { routeHandler } from './route-handler.ts'

export type HttpServer = {
  addRoutes(routes: readonly Route[]): void
  addReadinessCheck(name: string, check: ReadinessCheck): void
  listen(): Promise<string>
  /**
   * Stops accepting connections and answers every request it can still read, as any other (with
   * Connection: close); an idle keep-alive connection ends at its next answer or its keep-alive timeout;
   * what is unanswered after the drain is refused (connection-drain.ts).
   */
  close(): Promise<void>
  /** Answers every request not answered yet in nerve's 503 shape and closes the connections (a second signal). */
  refuseInFlight(): Promise<void>
  /**
   * For tests and benches: requests without a port (light-my-request, as fastify's inject), through the same
   * listener. light-my-request is a devDependency, loaded only here: production never calls inject().
   */
  inject(options: InjectOptions | string): Promise<InjectResponse>
}

export type HttpServerDeps = {
  log: Logger
  metrics: Metrics
  /** The shared ingest token: opens every ingest route, and reads off loopback. */
  ingestToken: string
  /** Narrower tokens: one per source kind (that route only), and `read` (reads only). */
  tokens?: Partial<Record<IngestSource | 'read', string>>
  /** How long close() waits for the requests under way before it refuses them (default drainMs). */
  drainMs?: number
}

/**
 * How long a stop waits for the requests under way: a publish waits at most a few seconds for the disk, and a
 * Falco request the bus keeps waiting is spooled after ingest.falco_spool_after (2 s). Well inside
 * Kubernetes' 30 s grace period, which the stages' own close shares.
 */
export const drainMs = 10_000

export function createHttpServer(config: HttpConfig, deps: HttpServerDeps): HttpServer {
  let closing = false
  /** Requests fastify's handlers hold: closing aborts their signals, so queued work is answered, not run. */
  const inFlight = new Set<AbortController>()
  const connectionClose = createConnectionClose()
  /** fastify's own handler (its router), for every request the direct path leaves to it. */
  let fastifyHandler: RequestListener | undefined
  // While the server closes too: a request read during the stop is answered as any other (connection-drain.ts).
  const listener: RequestListener = (req, res) => {
    if (!direct.serve(req, res)) (fastifyHandler as RequestListener)(req, res)
  }
  const drain = createConnectionDrain()
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
      const server = newServer(listener)
      drain.track(server)
      return server
    },
  })
  /** The servers of the addresses after the first (fastify listens on the first): `localhost`'s ::1. */
  const more: Server[] = []
  const checks = new Map<string, ReadinessCheck>()
  const count = createRequestCounter(deps.metrics)
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
    const failed = Object.values(results).filter((r) => !r.ok)
    const ready = failed.every((r) => r.optional)
    const status = !ready ? 'not_ready' : failed.length > 0 ? 'degraded' : 'ready'
    return reply.code(ready ? 200 : 503).send({ status, checks: results })
  })
  /**
   * A URL's `?token=` is taken on Falco's route only (its http_output cannot send headers); a token in any
   * other URL would land in shell history, proxies' logs and the console's address bar.
   */
  const authorized = (
    req: FastifyRequest,
    route: Pick<Route, 'auth' | 'source'>,
    tokens: readonly Buffer[],
    certOpens: boolean,
  ) =>
    auth.authorized(
      req.headers,
      takesQueryToken(route) ? (req.query as Record<string, string | undefined>) : noQuery,
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
        if (isLoopbackHostHeader(host) || authorized(req, route, auth.readTokens, false)) return done()
        reply.header('connection', 'close')
        return done(foreignHost(host))
      }
      if (tokens === null || authorized(req, route, tokens, certOpens(route))) return done()
      reply.header('connection', 'close')
      const err = auth.unauthorized(route, req.query as Record<string, string | undefined>)
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
      const given = takesQueryToken(route) ? query : noQuery
      return tokens === null || auth.authorized(req.headers, given, req.socket, tokens, certOpens(route))
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
  /**
   * Every answer of a read route carries the read headers, whoever gives it: the route's page, its 400
   * (which echoes the reader's query) or 404, and the 401 or 403 given before the handler runs.
   */
  const privateReadAnswer = (
    _req: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    done: (err: null, payload: unknown) => void,
  ) => {
    reply.headers(readAnswerHeaders)
    done(null, payload)
  }
  const addRoutes = (routes: readonly Route[]) => {
    for (const route of routes) {
      app.route({
        method: route.method,
        url: route.url,
        ...(route.bodyLimit ? { bodyLimit: route.bodyLimit } : {}),
        onRequest: checkAuth(route),
        ...(route.auth === 'read' ? { onSend: privateReadAnswer } : {}),
        // fastify's own errors (a body over the limit) in the route's shape too: Firehose reads only its own.
        ...(route.formatError ? { errorHandler: routeErrorHandler(route, route.formatError) } : {}),
        handler: routeHandler(route, { inFlight, connectionClose, tokenOpens, answer }),
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
    drain.track(server)
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

  /** Falcosidekick never retries: a Falco request refused here is an alert lost, so it is said. */
  const refusedWarning = (count: number, when: string) =>
    deps.log.warn(
      { component: 'http_server', error_code: 'BUS_CLOSED', count },
      `Refused requests ${when} (503, Retry-After); a sender that does not retry loses them.`,
    )

  const close = async () => {
    closing = true
    for (const request of inFlight)
      request.abort(
        new NerveError('SINK_UNAVAILABLE', 'nerve is closing; retry once it is back.', { retriable: true }),
      )
    inFlight.clear()
    // Before fastify's close, which would answer what is still read with its own bare 503.
    const refused = await drain.drain(deps.drainMs ?? drainMs)
    if (refused > 0) refusedWarning(refused, 'unanswered when the stop ended its wait')
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
    refuseInFlight: async () => {
      closing = true
      const refused = await drain.refuse()
      if (refused > 0) refusedWarning(refused, 'under way at a second signal')
    },
    inject: async (options) => {
      await app.ready()
      const { default: injectRequest } = await import('light-my-request')
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
