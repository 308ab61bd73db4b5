// A connection's close, told to each request it carries that is not answered yet, through one listener on
// the socket. A listener per request went over Node's limit of 10 at the eleventh request a client
// pipelined on one keep-alive connection (MaxListenersExceededWarning); the limit is a leak check worth
// keeping, so the connection's requests share one listener, taken off once the last of them is answered.
import type { Socket } from 'node:net'

export type ConnectionClose = {
  /** Calls `closed` once when `socket` closes; the function returned stops that (the request answered). */
  watch(socket: Socket, closed: () => void): () => void
}

export function createConnectionClose(): ConnectionClose {
  const watched = new WeakMap<Socket, { waiting: Set<() => void>; onClose: () => void }>()
  return {
    watch(socket, closed) {
      let entry = watched.get(socket)
      if (!entry) {
        const waiting = new Set<() => void>()
        const onClose = () => {
          watched.delete(socket)
          for (const tell of waiting) tell()
        }
        entry = { waiting, onClose }
        watched.set(socket, entry)
        socket.once('close', onClose)
      }
      const { waiting, onClose } = entry
      waiting.add(closed)
      return () => {
        waiting.delete(closed)
        if (waiting.size > 0 || watched.get(socket)?.waiting !== waiting) return
        // A keep-alive connection keeps no listener between its requests.
        watched.delete(socket)
        socket.off('close', onClose)
      }
    },
  }
}
