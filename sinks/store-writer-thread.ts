// The embedded store's writes on a worker thread (store-writer.worker.mjs), so that its SQLite work, the
// largest share of `nerve run`'s main thread after the bus, runs on the second core. The contract of the
// consumers is unchanged: write() resolves once the batch is committed and on disk, and only then does the
// bus commit it; a failed write rejects (counted, with its code), and the bus delivers the batch again.
// kill -9 ends both threads at once: what was not acknowledged is redelivered and written idempotently.
// The read API reads on a connection of its own, in another worker (store-reader-thread.ts; WAL: it sees each
// commit at once).
// With the embedded bus's file (busFile), the writer reads the correlations it is handed from that file on a
// connection of its own: the main thread sends their range only, so their text does not cross its loop.
import { Worker } from 'node:worker_threads'
import type { RecordRange } from '../bus/bus-port.ts'
import { errorCodeOf, NerveError, sqliteCodeOf } from '../runtime/errors.ts'
import type { ReadinessCheck } from '../runtime/http-routes.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { Correlation, RevokeOutcome } from '../schemas/types.ts'
import type { CorrelationItem, IndexBuild } from './correlation-store.ts'
import { RetrySchedule } from './retry-schedule.ts'
import { StoreIndexBuild } from './store-index-build.ts'
import { StoreWriterHealth } from './store-writer-health.ts'
import { failure, failureCode, type Reply, storeErrorCode } from './store-writer-replies.ts'

type Written = { stored: number; duplicates: number }
/** `opened`: the first correlation of each incident the batch opened (correlation-store.ts). */
type WrittenCorrelations = Written & { opened: Correlation[] }
type Deleted = { incidents: number; correlations: number; revoke_outcomes: number }

export type StoreWriterThread = {
  /** Correlations or their JSON text as the bus carried it (a string crosses cheaper than an object). */
  writeCorrelations(batch: readonly CorrelationItem[]): Promise<WrittenCorrelations>
  /** The correlations of a range of a bus topic's partition, which the writer reads from the bus's file. */
  writeCorrelationRange(topic: string, range: RecordRange): Promise<WrittenCorrelations>
  writeOutcomes(batch: readonly RevokeOutcome[]): Promise<Written>
  deleteBefore(cutoff: number): Promise<Deleted>
  /**
   * Commits what waits for commit_interval now and what arrives from then on at once: called before the bus's
   * consumers stop, so that their batches in flight do not wait out the interval (SIGTERM).
   */
  drain(): Promise<void>
  /**
   * /readyz's optional correlation_store check: fails from a start that could not open the store, or from
   * the `failedWritesForReadiness`th (store-writer-health.ts) write in a row that failed, to the next write that succeeds (the bus
   * keeps the writes meanwhile and delivers them again).
   */
  readiness: ReadinessCheck
  close(): Promise<void>
}

export async function startStoreWriterThread(
  config: {
    data_dir: string
    /**
     * Least time in ms between two commits of correlations (sinks.store.commit_interval); default 0: each
     * batch as soon as it arrives. What arrives meanwhile is written in one transaction.
     */
    commit_interval?: number
  },
  deps: {
    metrics: Metrics
    /** Told of an index built once on opening a store of an earlier version (store-index-build.ts). */
    log?: Logger
    onIncidentOpened?: (first: Correlation) => void
    /** The embedded bus's file, for writeCorrelationRange(). */
    busFile?: string
    /** A clock in ms (performance.now() by default): when a failed build or thread start is tried again. */
    now?: () => number
  },
): Promise<StoreWriterThread> {
  const telemetry = deps.metrics.component('correlation_store')
  const retentionDeleted = deps.metrics.counter(
    'nerve_store_retention_deleted_rows_total',
    'Rows the embedded store deleted by retention (sinks.store.retention).',
    ['table'],
  )
  let worker: Worker | undefined
  let starting: Promise<Worker> | undefined
  /** The thread close() ends: its exit is no death. */
  let closed: Worker | undefined
  let nextId = 0
  const waiting = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>()
  const now = deps.now ?? (() => performance.now())
  // Kept here, not in the thread, so that a thread started again goes on with it.
  const build = new StoreIndexBuild(now, telemetry, deps.log)
  /** A thread that could not start (open its store) is started again by a write once this has passed. */
  const startRetry = new RetrySchedule(now)
  const health = new StoreWriterHealth(() => startRetry.msUntilDue())

  const start = () => {
    if (!starting && !startRetry.due()) {
      const message = `The store writer thread could not start; it is started again in ${startRetry.msUntilDue()} ms.`
      return Promise.reject(new NerveError('SINK_UNAVAILABLE', message, { retriable: true }))
    }
    starting ??= new Promise<Worker>((resolve, reject) => {
      const began = now()
      let ready = false
      /** How long its start took: a thread that dies after it is tried again after ten times as long. */
      let startedInMs = 0
      const w = new Worker(new URL('./store-writer.worker.mjs', import.meta.url), {
        workerData: {
          dataDir: config.data_dir,
          busFile: deps.busFile,
          commitIntervalMs: config.commit_interval ?? 0,
          buildIndexes: build.ask(),
        },
      })
      // Its first message says it is ready; after that, replies, and an index it builds (told, not replied).
      // Its back-off ends at the first write that succeeds, not here: a thread that starts and then dies
      // again and again is started again after the back-off too.
      w.once('message', () => {
        ready = true
        startedInMs = now() - began
        health.started()
        w.on('message', (reply: Reply | { indexBuild: IndexBuild } | { indexReady: true }) => {
          if ('indexBuild' in reply) return build.told(reply.indexBuild)
          if ('indexReady' in reply) return build.done()
          const waiter = waiting.get(reply.id)
          waiting.delete(reply.id)
          if (reply.ok) waiter?.resolve(reply.result)
          else waiter?.reject(failure(reply))
        })
        worker = w
        resolve(w)
      })
      // A dead writer fails what waits on it (the bus redelivers those batches); the next write starts another,
      // at once if it had started, else once its back-off has passed. It dies of an error, or exits without
      // one (ended from outside): either is told once, unless close() ended it. Its code is SQLite's as a
      // failed write's is (a store it cannot open on a full disk is STORAGE_FULL): what waits on it, and the
      // start, fail with that code and SQLite's, so the bus's line for each batch says what this line says.
      let gone = false
      const died = (err: Error) => {
        if (gone || w === closed) return
        gone = true
        const code = storeErrorCode(err)
        telemetry.error(code, 'thread')
        const fields = {
          error_code: code,
          sqlite_code: sqliteCodeOf(err),
          // What crossed may be no Error (a thrown value the clone kept as a plain object).
          err: typeof err?.message === 'string' ? err.message : (sqliteCodeOf(err) ?? String(err)),
          waiting: waiting.size,
        }
        const what = ready ? 'failed' : 'could not start'
        if (ready)
          deps.log?.error(
            { ...fields, retry_in_ms: startRetry.failed(startedInMs) },
            'The store writer thread failed: the writes waiting on it fail and the bus delivers them again; a write starts it again once retry_in_ms has passed.',
          )
        else {
          health.startFailed(fields.sqlite_code ?? code)
          deps.log?.error(
            { ...fields, retry_in_ms: startRetry.failed(now() - began) },
            'The store writer thread could not start: the writes fail and the bus delivers them again; a write starts it again once retry_in_ms has passed.',
          )
        }
        const failed = new NerveError(code, `The store writer thread ${what}: ${fields.err}`, {
          retriable: true,
          cause: err,
        })
        for (const waiter of waiting.values()) waiter.reject(failed)
        waiting.clear()
        build.threadDied()
        worker = undefined
        starting = undefined
        reject(failed)
      }
      w.once('error', died)
      w.once('exit', (exitCode) => died(new Error(`The store writer thread exited with code ${exitCode}.`)))
    })
    return starting
  }

  const ask = async <T>(message: Record<string, unknown>): Promise<T> => {
    const w = worker ?? (await start())
    return new Promise<T>((resolve, reject) => {
      const id = nextId++
      waiting.set(id, { resolve: resolve as (value: unknown) => void, reject })
      w.postMessage({ ...message, id, buildIndexes: build.ask() })
    })
  }

  const counted = async <T>(stage: 'write' | 'retention', work: Promise<T>): Promise<T> => {
    try {
      return await work
    } catch (err) {
      telemetry.error(errorCodeOf(err), stage)
      throw err
    }
  }

  const write = async <T extends Written>(
    type: 'correlations' | 'outcomes',
    items: number,
    message: Record<string, unknown>,
  ): Promise<T> => {
    telemetry.received(items)
    let result: T
    try {
      result = await counted('write', ask<T>({ type, ...message }))
    } catch (err) {
      health.writeFailed(failureCode(err))
      throw err
    }
    health.wrote()
    startRetry.succeeded()
    telemetry.sent(result.stored)
    if (result.duplicates > 0) telemetry.discarded(result.duplicates, 'duplicate')
    return result
  }

  await start()
  return {
    async writeCorrelations(batch) {
      const result = await write<WrittenCorrelations>('correlations', batch.length, { batch })
      for (const c of result.opened) deps.onIncidentOpened?.(c)
      return result
    },
    async writeCorrelationRange(topic, range) {
      if (deps.busFile === undefined) throw new Error('writeCorrelationRange() needs the bus file.')
      const result = await write<WrittenCorrelations>('correlations', range.to - range.from, { topic, range })
      for (const c of result.opened) deps.onIncidentOpened?.(c)
      return result
    },
    writeOutcomes: (batch) => write<Written>('outcomes', batch.length, { batch }),
    async deleteBefore(cutoff) {
      const deleted = await counted('retention', ask<Deleted>({ type: 'retention', cutoff }))
      for (const [table, count] of Object.entries(deleted)) {
        if (count > 0) retentionDeleted.inc({ table }, count)
      }
      return deleted
    },
    async drain() {
      if (worker) await ask({ type: 'drain' })
    },
    readiness: health.check,
    async close() {
      const w = worker
      if (!w) return
      closed = w
      await ask({ type: 'close' })
      worker = undefined
      await w.terminate()
    },
  }
}
