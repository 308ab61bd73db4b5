// The embedded store's read API served from a worker thread (store-reader.worker.mjs). The main thread
// accepts ingest: a read it ran itself held it for as long as SQLite took, and a filter no index serves
// (`rule`, `min_score`, `status`) reads every correlation, whose number the watched agent decides (1,000,000:
// 5–12 s per page, and the unfiltered `total` alone 150 ms); so do dead letters and late events (100,000
// rows each, an original up to 16 KiB: a page of 1,000 is 16 MB of its text to parse and serialize). Here
// the main thread only hands the query over and sends the JSON bytes it gets back: its share of a read no
// longer grows with the store.
// The thread runs one read at a time; the others wait here, at most maxWaitingReads in all, past that a read
// is answered 429 (SATURATED, Retry-After: refusedReadRetryAfterSeconds) at once, and so is one past
// maxReadsPerConnection of its connection's. A waiting read whose client closed its connection is
// dropped, never run (a client that sent 32 slow reads and left held the reader for minutes), and so is one
// that has waited readTimeLimitMs, answered 503 (SINK_UNAVAILABLE): the 31 reads before it could hold it
// for up to 31 × 30 s. One running
// past readTimeLimitMs is answered 503 (SINK_UNAVAILABLE) and stopped: the thread reads in steps of a few
// thousand rows (stepped-scan.ts) and between steps looks at a stop flag set here through shared memory,
// so the read ends within a step and the same thread takes the next. Ending the thread instead did not stop
// the read: a native SQLite call runs to its end whatever Worker.terminate() says, so each stopped read
// left a thread scanning beside the new one, each new one cost ~1.4 s of CPU to start, and exit waited for
// them. A thread that does not answer a stop within stopGraceMs is ended all the same, and no other is
// started before it has exited (the reads wait meanwhile). Closing answers the waiting reads 503. A thread
// that died fails the read it ran (500).
import { Worker } from 'node:worker_threads'
import { type ErrorCode, errorCodes, isNerveError, NerveError } from '../runtime/errors.ts'
import { errorAnswer, type Route, type RouteRequest, type RouteResponse } from '../runtime/http-routes.ts'
import { readRoute } from '../runtime/read-route.ts'
import { type RejectedReadUrl, rejectedReadUrls } from './rejected-reads.ts'
import { type StoreRead, type StoreReadUrl, storeReadUrls } from './store-api.ts'

/** Reads waiting for the reader thread, the one it runs included: the console asks one at a time. */
export const maxWaitingReads = 32

/**
 * Of those, how many one connection may hold (queued or running): a client pipelining reads on one
 * connection took every place, and the console's next read got 429. The console asks three at most.
 */
export const maxReadsPerConnection = 8

/**
 * The Retry-After of a read refused for want of a place (429): places free only as the reads before it
 * finish, each of which may take the time limit, so as long as the 503's, not the 1 s of a busy ingest.
 */
export const refusedReadRetryAfterSeconds = 5

/** A read refused for want of a place, with its own Retry-After; any other failure as it was thrown. */
const refusedRead = (err: unknown): RouteResponse => {
  if (!isNerveError(err) || err.code !== 'SATURATED') throw err
  return { ...errorAnswer(err), headers: { 'retry-after': String(refusedReadRetryAfterSeconds) } }
}

/**
 * Longest a read may run: a filter no index serves reads every correlation (1,000,000: 10–24 s). Past it the
 * read is answered 503 and stopped at its next step.
 */
export const readTimeLimitMs = 30_000

/**
 * How long a stopped read's thread has to say it stopped (a step takes milliseconds) before it is ended:
 * a thread that does not answer at all.
 */
export const stopGraceMs = 5_000

export type StoreReaderThread = {
  /**
   * GET /v1/correlations, /v1/incidents, /v1/incidents/:id, /v1/revokes, and once the rejected store exists
   * GET /v1/dead-letters, /v1/late-events, answered by the thread.
   */
  routes: Route[]
  /** Answers the reads still queued 503 (SINK_UNAVAILABLE), lets the running one finish, ends the thread. */
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

type Queued = {
  id: number
  message: Record<string, unknown>
  resolve(reply: Reply): void
  reject(err: Error): void
  signal?: AbortSignal | undefined
  dropped?: () => void
  /** Drops it, answered 503, once it has waited the time limit for the thread. */
  waited?: NodeJS.Timeout
}

/**
 * Starts the reader on a store that exists (the writer thread made it): resolves once it reads.
 * `timeLimitMs`, `stopGraceMs` and `stepRows` (rows a step of a read walks) are for tests.
 */
export async function startStoreReaderThread(
  config: { data_dir: string },
  opts: { timeLimitMs?: number; stopGraceMs?: number; stepRows?: number } = {},
): Promise<StoreReaderThread> {
  const timeLimitMs = opts.timeLimitMs ?? readTimeLimitMs
  const graceMs = opts.stopGraceMs ?? stopGraceMs
  // The id of the read to stop, read by the thread between the steps of the read it runs.
  const stop = new Int32Array(new SharedArrayBuffer(4))
  Atomics.store(stop, 0, -1)
  let worker: Worker | undefined
  let starting: Promise<Worker> | undefined
  let nextId = 0
  let closing = false
  // The thread is handed one read at a time: those behind it wait here, where a client that left, a read
  // past the limit or closing can drop them without running them.
  const queue: Queued[] = []
  /**
   * The read handed to the thread (`on`, timed), or held while a thread starts. A stopped one (already
   * answered 503) stays here until its thread says it stopped or has exited: the next read waits for that.
   */
  let running: (Queued & { on?: Worker; timer?: NodeJS.Timeout; stopped?: boolean }) | undefined
  let idle: (() => void) | undefined

  const start = () => {
    if (starting) return starting
    const started: Promise<Worker> = new Promise<Worker>((resolve, reject) => {
      const w = new Worker(new URL('./store-reader.worker.mjs', import.meta.url), {
        workerData: { dataDir: config.data_dir, stop: stop.buffer, stepRows: opts.stepRows },
      })
      w.once('message', () => {
        w.on('message', (reply: Reply) => {
          if (running?.id === reply.id) finish(w, (done) => done.resolve(reply))
        })
        worker = w
        resolve(w)
      })
      // A thread that failed or ended fails the read it ran; the reads behind it go on on another, started
      // once this one has exited (after `error` a thread still runs until `exit`).
      let failure: Error | undefined
      w.once('error', (err) => {
        failure = err
      })
      w.once('exit', () => {
        const err = failure ?? new Error('The store reader thread stopped.')
        if (worker === w) worker = undefined
        if (starting === started) starting = undefined
        reject(err)
        finish(w, (failed) => failed.reject(err))
      })
    })
    starting = started
    return started
  }

  /** Ends the read thread `w` runs, if any: `settle` answers it, but a stopped one (answered when stopped). */
  const finish = (w: Worker, settle: (read: Queued) => void) => {
    if (running?.on !== w) return
    clearTimeout(running.timer)
    const done = running
    running = undefined
    if (!done.stopped) settle(done)
    next()
  }

  const next = () => {
    if (running) return
    if (closing) return idle?.()
    const q = queue.shift()
    if (!q) return
    clearTimeout(q.waited)
    if (q.dropped) q.signal?.removeEventListener('abort', q.dropped)
    const run = (w: Worker) => {
      const timer = setTimeout(() => overran(w), timeLimitMs)
      running = { ...q, on: w, timer }
      w.postMessage({ ...q.message, id: q.id })
    }
    if (worker) return run(worker)
    // Held as running while the thread starts, so the next read waits for it rather than starting another.
    running = q
    start().then(
      (w) => {
        running = undefined
        run(w)
      },
      (err: Error) => {
        running = undefined
        q.reject(err)
        next()
      },
    )
  }

  /** Answers the read 503 and asks its thread to stop it; a thread that does not answer is ended. */
  const overran = (w: Worker) => {
    if (running?.on !== w || running.stopped) return
    const late = running
    late.stopped = true
    Atomics.store(stop, 0, late.id)
    late.timer = setTimeout(() => {
      if (running !== late) return
      // Its `exit` frees the read's place, and only then is another thread started.
      if (worker === w) worker = undefined
      void w.terminate()
    }, graceMs)
    late.reject(
      new NerveError(
        'SINK_UNAVAILABLE',
        `The read took longer than ${timeLimitMs / 1000} s and was stopped; narrow its filter (agent, incident, since/until) and retry.`,
        { retriable: true },
      ),
    )
  }

  const ask = (message: Record<string, unknown>, signal?: AbortSignal): Promise<Reply> =>
    new Promise<Reply>((resolve, reject) => {
      const q: Queued = { id: nextId++, message, resolve, reject, signal }
      /** Takes it out of the queue unrun, answered `err`. */
      const drop = (err: Error) => {
        const at = queue.indexOf(q)
        if (at < 0) return
        queue.splice(at, 1)
        clearTimeout(q.waited)
        if (q.dropped) signal?.removeEventListener('abort', q.dropped)
        reject(err)
      }
      if (signal) {
        q.dropped = () => drop(reasonOf(signal))
        signal.addEventListener('abort', q.dropped, { once: true })
      }
      q.waited = setTimeout(() => drop(waitedError(timeLimitMs)), timeLimitMs)
      queue.push(q)
      next()
    })

  /** Reads each connection has queued or running, until answered. */
  const heldBy = new WeakMap<object, number>()
  const read = async (
    url: StoreReadUrl | RejectedReadUrl,
    req: StoreRead & Pick<RouteRequest, 'signal' | 'connection'>,
  ): Promise<RouteResponse> => {
    if (closing) throw closingError()
    if (req.signal?.aborted) throw reasonOf(req.signal)
    // Counted before anything is awaited, the one running included: the bound holds while a thread starts.
    if (queue.length + (running ? 1 : 0) >= maxWaitingReads) {
      throw new NerveError('SATURATED', `The store has ${maxWaitingReads} reads waiting; retry shortly.`, {
        retriable: true,
      })
    }
    const connection = req.connection ?? {}
    const held = heldBy.get(connection) ?? 0
    if (held >= maxReadsPerConnection) {
      throw new NerveError(
        'SATURATED',
        `This connection has ${maxReadsPerConnection} reads waiting; retry once they are answered.`,
        { retriable: true },
      )
    }
    heldBy.set(connection, held + 1)
    const reply = await ask({ url, read: { query: req.query, params: req.params } }, req.signal).finally(() =>
      heldBy.set(connection, (heldBy.get(connection) ?? 1) - 1),
    )
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
    routes: [...storeReadUrls, ...rejectedReadUrls].map((url) =>
      readRoute(url, (req) => read(url, req).catch(refusedRead)),
    ),
    async close() {
      closing = true
      for (const q of queue.splice(0)) {
        clearTimeout(q.waited)
        q.reject(closingError())
      }
      // The running read (at most the time limit) is answered; then the thread closes its connections.
      if (running) await new Promise<void>((resolve) => (idle = resolve))
      const w = worker
      worker = undefined
      if (!w) return
      await new Promise<void>((resolve) => {
        w.once('message', () => resolve())
        w.once('exit', () => resolve())
        w.postMessage({ type: 'close', id: -1 })
      })
      await w.terminate()
    },
  }
}

const closingError = () =>
  new NerveError('SINK_UNAVAILABLE', 'nerve is closing; the read was not run. Retry once it is back.', {
    retriable: true,
  })

/** A read that waited the time limit for the thread: the reads before it hold it (a slow filter, a flood). */
const waitedError = (limitMs: number) =>
  new NerveError(
    'SINK_UNAVAILABLE',
    `The read waited ${limitMs / 1000} s for the reads before it and was not run; retry shortly.`,
    { retriable: true },
  )

/** Why a queued read was dropped: the signal's NerveError (client gone, server closing), else closing's. */
const reasonOf = (signal: AbortSignal): Error =>
  signal.reason instanceof NerveError ? signal.reason : closingError()

/** The read's error as the worker threw it: its code (a 400 with its details, a 404), else INTERNAL. */
function failure(reply: Reply): NerveError {
  const code = (errorCodes as readonly string[]).includes(reply.code ?? '')
    ? (reply.code as ErrorCode)
    : 'INTERNAL'
  return new NerveError(code, reply.message ?? 'The store could not read.', { details: reply.details })
}
