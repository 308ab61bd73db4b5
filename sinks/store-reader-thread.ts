// The embedded store's read API served from a worker thread (store-reader.worker.mjs). The main thread
// accepts ingest: a read it ran itself held it for as long as SQLite took, and a filter no index serves
// (`rule`, `min_score`, `status`) reads every correlation, whose number the watched agent decides (1,000,000:
// 5–12 s per page, and the unfiltered `total` alone 150 ms); so do dead letters and late events (100,000
// rows each, an original up to 16 KiB: a page of 1,000 is 16 MB of its text to parse and serialize). Here
// the main thread only hands the query over and sends the JSON bytes it gets back: its share of a read no
// longer grows with the store.
// Reads wait their turn in the worker, at most maxWaitingReads of them; past that a read is answered 429
// (SATURATED, Retry-After) at once. A reader thread that died fails the reads it held (500); the next read
// starts another.
import { Worker } from 'node:worker_threads'
import { type ErrorCode, errorCodes, NerveError } from '../runtime/errors.ts'
import type { Route, RouteResponse } from '../runtime/http-server.ts'
import { type RejectedReadUrl, rejectedReadUrls } from './rejected-reads.ts'
import { readRoute, type StoreRead, type StoreReadUrl, storeReadUrls } from './store-api.ts'

/** Reads queued in the reader thread: the console asks one at a time, a client in a loop a few. */
export const maxWaitingReads = 32

export type StoreReaderThread = {
  /**
   * GET /v1/correlations, /v1/incidents, /v1/incidents/:id, /v1/revokes, and once the rejected store exists
   * GET /v1/dead-letters, /v1/late-events, answered by the thread.
   */
  routes: Route[]
  close(): Promise<void>
}

type Reply = {
  id: number
  ok: boolean
  status?: number
  /** The answer's JSON, UTF-8: its memory was transferred from the thread. */
  bytes?: Uint8Array
  code?: string
  message?: string
  details?: unknown
}

/** Starts the reader on a store that exists (the writer thread made it): resolves once it reads. */
export async function startStoreReaderThread(config: { data_dir: string }): Promise<StoreReaderThread> {
  let worker: Worker | undefined
  let starting: Promise<Worker> | undefined
  let nextId = 0
  const waiting = new Map<number, { resolve(reply: Reply): void; reject(err: Error): void }>()

  const start = () => {
    if (starting) return starting
    const started: Promise<Worker> = new Promise<Worker>((resolve, reject) => {
      const w = new Worker(new URL('./store-reader.worker.mjs', import.meta.url), {
        workerData: { dataDir: config.data_dir },
      })
      w.once('message', () => {
        w.on('message', (reply: Reply) => {
          const waiter = waiting.get(reply.id)
          waiting.delete(reply.id)
          waiter?.resolve(reply)
        })
        worker = w
        resolve(w)
      })
      // A thread that failed or ended fails what waits on it; the next read starts another.
      const lost = (err: Error) => {
        for (const waiter of waiting.values()) waiter.reject(err)
        waiting.clear()
        if (worker === w) worker = undefined
        if (starting === started) starting = undefined
        reject(err)
      }
      w.once('error', lost)
      w.once('exit', () => lost(new Error('The store reader thread stopped.')))
    })
    starting = started
    return started
  }

  const ask = async (message: Record<string, unknown>): Promise<Reply> => {
    const w = worker ?? (await start())
    return new Promise<Reply>((resolve, reject) => {
      const id = nextId++
      waiting.set(id, { resolve, reject })
      w.postMessage({ ...message, id })
    })
  }

  const read = async (url: StoreReadUrl | RejectedReadUrl, req: StoreRead): Promise<RouteResponse> => {
    if (waiting.size >= maxWaitingReads) {
      throw new NerveError('SATURATED', `The store has ${maxWaitingReads} reads waiting; retry shortly.`, {
        retriable: true,
      })
    }
    const reply = await ask({ url, read: { query: req.query, params: req.params } })
    if (!reply.ok) throw failure(reply)
    return {
      status: reply.status ?? 200,
      body: reply.bytes
        ? Buffer.from(reply.bytes.buffer, reply.bytes.byteOffset, reply.bytes.byteLength)
        : '',
      headers: { 'content-type': 'application/json; charset=utf-8' },
    }
  }

  await start()
  return {
    routes: [...storeReadUrls, ...rejectedReadUrls].map((url) => readRoute(url, (req) => read(url, req))),
    async close() {
      const w = worker
      if (!w) return
      await ask({ type: 'close' })
      worker = undefined
      await w.terminate()
    },
  }
}

/** The read's error as the worker threw it: its code (a 400 with its details, a 404), else INTERNAL. */
function failure(reply: Reply): NerveError {
  const code = (errorCodes as readonly string[]).includes(reply.code ?? '')
    ? (reply.code as ErrorCode)
    : 'INTERNAL'
  return new NerveError(code, reply.message ?? 'The store could not read.', { details: reply.details })
}
