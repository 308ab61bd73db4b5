// A route's handler under fastify: the request as the route sees it (RouteRequest), its signal aborted when
// the client leaves or the server closes, and the answer (or the route's own error shape) sent.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ConnectionClose } from './connection-close.ts'
import { isNerveError, NerveError } from './errors.ts'
import type { IngestSource, Route, RouteRequest, RouteResponse } from './http-routes.ts'

export type RouteHandlerDeps = {
  /** Requests being handled: closing the server aborts their signals, so queued work is answered, not run. */
  inFlight: Set<AbortController>
  connectionClose: ConnectionClose
  tokenOpens: (req: RouteRequest, source: IngestSource) => boolean
  /** Sends a route's answer, counted (and with Retry-After for a saturation code). */
  answer(route: Route, reply: FastifyReply, res: RouteResponse, code?: NerveError['code']): FastifyReply
}

export function routeHandler(route: Route, deps: RouteHandlerDeps) {
  const { inFlight, connectionClose, tokenOpens, answer } = deps
  return async (req: FastifyRequest, reply: FastifyReply) => {
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
  }
}
