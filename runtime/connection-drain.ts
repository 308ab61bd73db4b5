// How nerve's HTTP servers stop (SIGTERM): no new connection is accepted, but every request that can still be
// read is answered. Falcosidekick never retries and Falco's http_output ignores the status, so a request
// refused with a 503, or a connection reset under it, is an alert lost.
// - Connections already on their way (their handshake done by the kernel, not yet taken by Node) would be
//   reset by the listener's close: the stop takes connections until none came for `quietMs` since it began,
//   for at most `lingerMs`.
// - The listeners close. Node's server.close() would also destroy every connection without a request under
//   way: one accepted a moment ago whose request is still in the kernel's buffers (its sender saw
//   ECONNRESET), and a keep-alive one whose next request is on its way (undici: UND_ERR_SOCKET). So
//   connections are not closed under their senders: a keep-alive connection waiting between requests ends at
//   its keep-alive timeout (5 s, told to the client in Keep-Alive: timeout=5, so a client that reads it
//   never sends on it then), or once its next request is answered.
// - A connection on which no request was read yet gets `unreadMs` past the listeners' close, then is destroyed:
//   anyone may open one (no token is asked before a request is read), and an idle one or one trickling its
//   headers held every stop for the whole drain. A request on its way is read well within it.
// - A request read before or during the stop is handled as any other; its answer says Connection: close
//   (the server's closing flag), so its connection ends once it is answered.
// - What is still unanswered after `drainMs` (a bus that hangs, a client that never sends) is refused in
//   nerve's error shape (503 BUS_CLOSED, Retry-After, Connection: close), and the connections are closed.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { Server as NetServer, type Socket } from 'node:net'
import { NerveError } from './errors.ts'
import { errorAnswer, retryAfterSeconds } from './http-routes.ts'

export type ConnectionDrain = {
  /** Follows a server's connections and requests from its start. */
  track(server: Server): void
  /**
   * Stops the servers accepting and resolves once their connections are gone (at most `drainMs`, then what is
   * left is refused): how many requests were refused.
   */
  drain(drainMs: number): Promise<number>
  /** Answers every request not answered yet in nerve's 503 shape and closes every connection: how many. */
  refuse(): Promise<number>
}

/** A connection's requests not yet answered, and whether one was ever read on it. */
type Connection = { open: Set<ServerResponse>; read: boolean }

/** A stop keeps taking connections until none came for this long (a burst already sent)... */
const quietMs = 50
/** ...for at most this long. */
const lingerMs = 1_000

/** Resolves after a poll phase of the event loop: the connections the kernel had queued are taken then. */
const afterPoll = () => new Promise<void>((resolve) => setImmediate(resolve))

/** How long past the listeners' close a connection on which no request was read is kept. */
const unreadMs = 1_000

/** How long the refusals are given to reach their clients before their connections are destroyed. */
const refuseMs = 1_000

export function createConnectionDrain(): ConnectionDrain {
  const servers: Server[] = []
  const connections = new Map<Socket, Connection>()
  let lastAccepted = 0
  /** Waiting for every connection to go. */
  const onGone = new Set<() => void>()

  const track = (server: Server) => {
    servers.push(server)
    server.on('connection', (socket: Socket) => {
      lastAccepted = Date.now()
      const connection: Connection = { open: new Set(), read: false }
      connections.set(socket, connection)
      socket.once('close', () => {
        connections.delete(socket)
        if (connections.size === 0) for (const done of onGone) done()
      })
    })
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const connection = connections.get(req.socket)
      if (!connection) return
      connection.read = true
      connection.open.add(res)
      res.once('close', () => connection.open.delete(res))
    })
  }

  /** Resolves once every connection is gone, or after `ms`. */
  const gone = (ms: number) =>
    new Promise<void>((resolve) => {
      if (connections.size === 0) return resolve()
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        onGone.delete(done)
        resolve()
      }
      onGone.add(done)
    })

  const refuse = async () => {
    const err = new NerveError('BUS_CLOSED', 'nerve is stopping; retry once it is back.', { retriable: true })
    const { status, body } = errorAnswer(err)
    const text = JSON.stringify(body)
    let refused = 0
    for (const [socket, connection] of connections) {
      // Between requests: nothing to answer. An answer already under way is let finish.
      if (connection.open.size === 0) socket.destroy()
      const unanswered = [...connection.open].filter((res) => !res.headersSent)
      for (const res of unanswered) {
        res.writeHead(status, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(text),
          'retry-after': String(retryAfterSeconds[err.code]),
          connection: 'close',
        })
        res.end(text)
        refused++
      }
    }
    await gone(refuseMs)
    for (const socket of connections.keys()) socket.destroy()
    return refused
  }

  const linger = async () => {
    const start = Date.now()
    const until = start + lingerMs
    for (;;) {
      await afterPoll()
      const quietFor = Date.now() - Math.max(start, lastAccepted)
      if (quietFor >= quietMs || Date.now() >= until) return
      await new Promise((resolve) => setTimeout(resolve, Math.min(quietMs - quietFor, until - Date.now())))
    }
  }

  return {
    track,
    drain: async (drainMs) => {
      if (servers.some((server) => server.listening)) await linger()
      // net's close, not http's: http's would also destroy the connections accepted whose request is unread.
      for (const server of servers) if (server.listening) NetServer.prototype.close.call(server)
      const dropUnread = setTimeout(
        () => {
          for (const [socket, connection] of connections) if (!connection.read) socket.destroy()
        },
        Math.min(unreadMs, drainMs),
      )
      await gone(drainMs)
      clearTimeout(dropUnread)
      return connections.size > 0 ? await refuse() : 0
    },
    refuse,
  }
}
