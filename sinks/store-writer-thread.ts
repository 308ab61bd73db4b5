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
import { errorCodeOf, errorCodeOfSqlite, errorCodes, NerveError, sqliteCodeOf } from '../runtime/errors.ts'
import type { ReadinessCheck } from '../runtime/http-routes.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { Correlation, RevokeOutcome } from '../schemas/types.ts'
import type { CorrelationItem, IndexBuild } from './correlation-store.ts'
import { RetrySchedule } from './retry-schedule.ts'
import { StoreWriterHealth } from './store-writer-health.ts'

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

/**
 * An index build as it is logged: a failed one with the ms until it is tried again, one started after a
 * failure with how many failed before it.
 */
type ToldIndexBuild = IndexBuild & { retry_in_ms?: number; failures?: number }

type Reply = {
  id: number
  ok: boolean
  result?: unknown
  code?: string
  sqliteCode?: string
  message?: string
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
    /** Told of an index built once on opening a store of an earlier version (logIndexBuild). */
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
  // Kept here, not in the thread, so that a thread started again goes on with them. The writes go on
  // without the index: its back-off keeps the least wait of ten times the failed build, however long.
  const buildRetry = new RetrySchedule(now)
  /** The index build: `asked` of the thread (once at a time) when wanted and its back-off has passed. */
  let build: 'wanted' | 'asked' | 'done' = 'wanted'
  const askBuild = () => {
    if (build !== 'wanted' || !buildRetry.due()) return false
    build = 'asked'
    return true
  }
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
          buildIndexes: askBuild(),
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
          if ('indexBuild' in reply) return indexBuildTold(reply.indexBuild)
          if ('indexReady' in reply) {
            build = 'done'
            return
          }
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
      // one (ended from outside): either is told once, unless close() ended it.
      let gone = false
      const died = (err: Error) => {
        if (gone || w === closed) return
        gone = true
        const code = threadErrorCode(err)
        telemetry.error(code, 'thread')
        const fields = {
          error_code: code,
          sqlite_code: sqliteCodeOf(err),
          err: err.message,
          waiting: waiting.size,
        }
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
        for (const waiter of waiting.values()) waiter.reject(err)
        waiting.clear()
        if (build === 'asked') build = 'wanted'
        worker = undefined
        starting = undefined
        reject(err)
      }
      w.once('error', died)
      w.once('exit', (exitCode) => died(new Error(`The store writer thread exited with code ${exitCode}.`)))
    })
    return starting
  }

  /** A failed build is counted, by errorCodeOfSqlite, and tried again once its back-off has passed. */
  const indexBuildTold = (told: IndexBuild) => {
    let retry: { retry_in_ms?: number; failures?: number } = {}
    if (told.failed !== undefined) {
      telemetry.error(errorCodeOfSqlite(told.failed), 'index_build')
      build = 'wanted'
      retry = { retry_in_ms: buildRetry.failed(told.ms ?? 0) }
    } else if (told.ms !== undefined) buildRetry.succeeded()
    else if (buildRetry.failures > 0) retry = { failures: buildRetry.failures }
    if (deps.log) logIndexBuild(deps.log, { ...told, ...retry })
  }

  const ask = async <T>(message: Record<string, unknown>): Promise<T> => {
    const w = worker ?? (await start())
    return new Promise<T>((resolve, reject) => {
      const id = nextId++
      waiting.set(id, { resolve: resolve as (value: unknown) => void, reject })
      w.postMessage({ ...message, id, buildIndexes: askBuild() })
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

/** A thread's death: the code of a NerveError that ended it (its code survives the clone), else INTERNAL. */
function threadErrorCode(err: unknown): (typeof errorCodes)[number] {
  const code = (err as { code?: unknown }).code
  return (errorCodes as readonly unknown[]).includes(code)
    ? (code as (typeof errorCodes)[number])
    : 'INTERNAL'
}

function failure(reply: Reply): NerveError {
  const code = (errorCodes as readonly string[]).includes(reply.code ?? '')
    ? (reply.code as (typeof errorCodes)[number])
    : 'INTERNAL'
  return new NerveError(code, `The store could not write: ${reply.message ?? 'unknown error'}`, {
    retriable: true,
    cause: reply.sqliteCode === undefined ? undefined : { code: reply.sqliteCode },
  })
}

/** Why a write failed, for readiness: SQLite's code (of the error or its cause), else nerve's. */
function failureCode(err: unknown): string {
  return sqliteCodeOf(err) ?? threadErrorCode(err)
}

/**
 * Before and after a build of an index a store of an earlier version lacks (about 6 s per million revoke
 * outcomes): HTTP listens meanwhile, the store's writes wait and an incident's revokes read slower. Once:
 * the next start finds the index. A build that failed is told with how long it ran and when it is tried
 * again, and the next try as a retry.
 */
export function logIndexBuild(
  log: Logger,
  { index, rows, ms, failed, retry_in_ms, failures }: ToldIndexBuild,
): void {
  if (failed !== undefined)
    log.warn(
      {
        index,
        revoke_outcomes: rows,
        error_code: errorCodeOfSqlite(failed),
        sqlite_code: failed,
        duration_ms: ms,
        retry_in_ms,
      },
      "Could not build the index: the store's writes go on without it (an incident's revokes read slower), and it is tried again before a write once retry_in_ms has passed.",
    )
  else if (ms === undefined && failures !== undefined)
    log.info(
      { index, revoke_outcomes: rows, failures },
      "Retrying the build of an index this version needs: the store's writes wait for it (about 6 s per million revoke outcomes).",
    )
  else if (ms === undefined)
    log.info(
      { index, revoke_outcomes: rows },
      "Building an index this version needs, once: the store's writes wait for it (about 6 s per million revoke outcomes).",
    )
  else
    log.info({ index, revoke_outcomes: rows, duration_ms: ms }, "Built the index; the store's writes go on.")
}
