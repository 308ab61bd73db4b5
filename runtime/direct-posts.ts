// The table's POST routes (the ingest routes) served from node:http's request listener, before fastify:
// fastify's routing, request and reply objects, hooks, content-type lookup and body parser cost about 14 µs
// of the main thread per single-alert request, a tenth of it. Only the common request is served here: a POST
// to a route's exact path, with a Content-Length within the route's limit and directBytes, no
// Transfer-Encoding, a Content-Type from a short list of plain ones (or none), and a token (or client
// certificate) that opens the route. Anything else (a 401, a 413, a large or chunked body, an unusual
// Content-Type, any other method or path) goes to fastify, which
// answers it exactly as before. The answers given
// here are the ones fastify gives: the same route handler, the same error table and bodies, the same
// counter, a JSON body with fastify's Content-Type and Content-Length.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { parse as parseQuery } from 'node:querystring'
import type { NerveError } from './errors.ts'
import type { Route, RouteRequest, RouteResponse } from './http-routes.ts'

export type DirectPostDeps = {
  /** Whether the request's token (bearer, ?token=, Firehose key) or client certificate opens `route`. */
  opens(route: Route, req: IncomingMessage, query: Record<string, string | undefined>): boolean
  /** The largest body `route` takes. */
  limitOf(route: Route): number
  /** The route's answer to a request, counted by route and status; Retry-After for a saturation code. */
  answer(route: Route, res: RouteResponse, code?: NerveError['code']): RouteResponse
  /** Any error of a route as the answer fastify's error handlers give (route's own shape, or the table's). */
  failed(route: Route, err: unknown, req: RouteRequest): { res: RouteResponse; code: NerveError['code'] }
  /** Whether the server is closing: an answer then closes its connection instead of keeping it alive. */
  closing(): boolean
  /** RouteRequest.tokenOpens, given to every request. */
  tokenOpens: NonNullable<RouteRequest['tokenOpens']>
}

export type DirectPosts = {
  add(route: Route): void
  /** Serves the request and returns true, or returns false having touched nothing (fastify's to answer). */
  serve(req: IncomingMessage, res: ServerResponse): boolean
}

/**
 * Content-Types served here as they are written by Falcosidekick, Falco, the AWS senders and curl; fastify's
 * parser takes every Content-Type (checking that it is well formed), so any other goes to it.
 */
const plainTypes = new Set([
  'application/json',
  'application/json; charset=utf-8',
  'application/json;charset=utf-8',
  'application/x-ndjson',
  'application/gzip',
  'application/octet-stream',
  'text/plain',
  'text/plain; charset=utf-8',
])

/**
 * Larger bodies go to fastify, as before: the saving is per request, so it matters for small bodies only,
 * and the large-body path (the /healthz row: three 4 MB bodies) stays the one its turns were tuned on.
 */
export const directBytes = 256 * 1024

const noQuery: Record<string, string | undefined> = Object.freeze({})

export function createDirectPosts(deps: DirectPostDeps): DirectPosts {
  const routes = new Map<string, Route>()

  const serve = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'POST') return false
    const url = req.url ?? ''
    const mark = url.indexOf('?')
    const route = routes.get(mark === -1 ? url : url.slice(0, mark))
    if (route === undefined) return false
    const headers = req.headers
    const length = headers['content-length']
    if (length === undefined || headers['transfer-encoding'] !== undefined) return false
    const size = Number(length)
    if (!(size <= directBytes && size <= deps.limitOf(route))) return false
    const type = headers['content-type']
    if (type !== undefined && !plainTypes.has(type)) return false
    const query =
      mark === -1 ? noQuery : (parseQuery(url.slice(mark + 1)) as Record<string, string | undefined>)
    if (!deps.opens(route, req, query)) return false
    readBody(req, size, (body, err) => {
      const request: RouteRequest = {
        body,
        headers,
        query,
        receivedAt: Date.now(),
        tokenOpens: deps.tokenOpens,
      }
      if (err !== undefined) {
        // As fastify's body parser: a read that failed (the client went away) or a body not of its
        // Content-Length is a 400, counted, answered if the socket is still there, and the connection
        // closed (the client may send more).
        const failure = deps.failed(route, err, request)
        const answer = deps.answer(route, failure.res, failure.code)
        answer.headers = { ...answer.headers, connection: 'close' }
        if (!res.destroyed) send(res, answer)
        return
      }
      // An answer that cannot be sent (a body JSON cannot hold) is answered as an error, as fastify does.
      handle(route, res, request).catch((err: unknown) => {
        const failure = deps.failed(route, err, request)
        if (!res.headersSent) send(res, deps.answer(route, failure.res, failure.code))
      })
    })
    return true
  }

  const handle = async (route: Route, res: ServerResponse, request: RouteRequest) => {
    let answer: RouteResponse
    try {
      answer = deps.answer(route, await route.handle(request))
    } catch (err) {
      const failure = deps.failed(route, err, request)
      answer = deps.answer(route, failure.res, failure.code)
    }
    // Served before the server began to close: the connection is not kept for a next request that would
    // only be refused, and the server's close does not wait out its keep-alive timeout.
    if (deps.closing()) answer.headers = { ...answer.headers, connection: 'close' }
    // Refused meanwhile (a stop that outlasted its drain), or the client left.
    if (res.headersSent || res.destroyed) return
    send(res, answer)
  }

  return {
    add: (route) => void routes.set(route.url, route),
    serve,
  }
}

/**
 * The body's bytes, copied out of the socket's buffers as fastify copies them. The HTTP parser stops at
 * Content-Length (checked against the limit before this), so no more than that is ever held.
 */
function readBody(
  req: IncomingMessage,
  size: number,
  done: (body: Buffer, err?: Error & { statusCode: number }) => void,
): void {
  // Listeners passed as they are made: a closure bound to a name is given its `name` property each time it
  // is made (tsx keeps names), a cost on every request.
  const chunks: Buffer[] = []
  let received = 0
  let settled = false
  req.on('data', (chunk: Buffer) => {
    chunks.push(chunk)
    received += chunk.length
  })
  req.on('error', (err: Error) => {
    if (settled) return
    settled = true
    done(Buffer.alloc(0), badRequest(err))
  })
  req.on('end', () => {
    if (settled) return
    settled = true
    if (received !== size)
      done(Buffer.alloc(0), badRequest(new RangeError('Request body size did not match Content-Length')))
    else done(Buffer.concat(chunks, received))
  })
}

const badRequest = (err: Error) => Object.assign(err, { statusCode: 400 })

/**
 * As fastify's reply.send: an object as JSON, a string as text, a Buffer as bytes, with their length; no body
 * as Content-Length 0. As fastify too: a 1xx or 204 answer carries no body, Content-Type or Content-Length
 * (RFC 9110 8.6), nor does a 304 without a body carry a length; a route's own JSON Content-Type without a
 * charset gets `; charset=utf-8`.
 */
function send(res: ServerResponse, answer: RouteResponse): void {
  const status = answer.status
  const body = answer.body
  const headers: Record<string, string | number> = answer.headers ? { ...answer.headers } : {}
  if (status < 200 || status === 204) {
    delete headers['content-type']
    delete headers['content-length']
    res.writeHead(status, headers)
    res.end()
    return
  }
  let payload: string | Buffer
  let type: string | undefined
  if (body === undefined) {
    payload = ''
  } else if (typeof body === 'string') {
    payload = body
    type = 'text/plain; charset=utf-8'
  } else if (Buffer.isBuffer(body)) {
    payload = body
    type = 'application/octet-stream'
  } else {
    payload = JSON.stringify(body)
    type = 'application/json; charset=utf-8'
  }
  const given = headers['content-type']
  if (given === undefined) {
    if (type !== undefined) headers['content-type'] = type
  } else if (body !== undefined && !Buffer.isBuffer(body)) {
    const text = String(given)
    if (text.includes('json') && !/;\s*charset=/i.test(text))
      headers['content-type'] = `${text}; charset=utf-8`
  }
  if (body !== undefined || status !== 304)
    headers['content-length'] = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
  res.writeHead(status, headers)
  res.end(payload)
}
