// The correlate stage on a worker thread (correlate-worker.ts), so that the correlator and its checkpoints
// use the second core while the main thread keeps the HTTP server, ingest and the bus. The worker reads and
// publishes through this thread's bus (bus/bus-port.ts), with the contract of start-correlate.ts unchanged:
// correlations are published, then the checkpoint is durable, then the batch is committed. kill -9 ends both
// threads at once and the bus redelivers what was not committed. A worker that dies is replaced; its
// batches in flight fail and are delivered again to the next one, which restores the checkpoints.
import { Worker } from 'node:worker_threads'
import { servePortBus } from '../bus/bus-port.ts'
import { type ErrorCode, NerveError } from '../runtime/errors.ts'
import { logDestination } from '../runtime/logger.ts'
import { settlesWithin } from '../runtime/settles-within.ts'
import type { Config } from '../schemas/types.ts'
import type { ThreadMessage } from './correlate-worker.ts'
import type { CorrelateDeps, CorrelateStage } from './start-correlate.ts'

const restartDelayMs = 1_000
const maxRestartDelayMs = 60_000
/** A worker that ran this long before it stopped is not counted as a failed start: the next one waits 1 s. */
const healthyRunMs = 60_000
/** How long a clean stop waits for the worker's own (drain, final save, leave) before ending it. */
const closeTimeoutMs = 30_000

export async function startCorrelateThread(
  config: Config,
  deps: Pick<CorrelateDeps, 'bus' | 'log' | 'metrics' | 'dataDir'> & {
    /** The embedded bus's file: the worker reads its events from it rather than through this thread. */
    busFile?: string
    /** Default 30 s: how long close() waits for the worker to stop before ending it. */
    closeTimeoutMs?: number
  },
): Promise<CorrelateStage> {
  const log = deps.log.child({ component: 'correlator' })
  const destination = logDestination(deps.log)
  const workerData = { config, dataDir: deps.dataDir ?? config.data_dir, busFile: deps.busFile }
  let worker: Worker | undefined
  let running = false
  let closing = false
  let nextMetricsId = 0
  /** Replacements in a row that stopped soon after they started (or never did): the next waits longer. */
  let failures = 0
  let startedAt = 0
  const metricsWaiting = new Map<number, (values: unknown) => void>()
  let closed: (() => void) | undefined

  const spawn = () => new Worker(new URL('./correlate.worker.mjs', import.meta.url), { workerData })

  /** Routes a worker's messages: its own kinds here, the rest to the bus server. */
  const listen = (
    w: Worker,
    server: () => ReturnType<typeof servePortBus>,
    started?: (err?: Error) => void,
  ) => {
    w.on('message', (message: ThreadMessage | { t: string }) => {
      if (!('kind' in message)) return server().onMessage(message)
      if (message.kind === 'log') destination.write(message.line)
      else if (message.kind === 'metrics') {
        metricsWaiting.get(message.id)?.(message.metrics)
        metricsWaiting.delete(message.id)
      } else if (message.kind === 'started') {
        running = true
        startedAt = Date.now()
        started?.()
      } else if (message.kind === 'failed') {
        if (started) started(new NerveError(message.code as ErrorCode, message.message))
        else
          log.error(
            { error_code: message.code, reason: message.message },
            'Correlator thread could not start.',
          )
      } else if (message.kind === 'closed') closed?.()
    })
    w.on('error', (err) => {
      running = false
      started?.(err)
      if (!closing) log.error({ err }, 'Correlator thread failed.')
    })
    // Whatever ended it (an error, an exit), a worker that stops while nerve runs is replaced; its batches
    // in flight fail and are delivered again to the next one, which restores the checkpoints.
    w.on('exit', (code) => {
      running = false
      for (const resolve of metricsWaiting.values()) resolve([])
      metricsWaiting.clear()
      // Even while closing: a batch in flight at the dead worker must fail, or stopping its subscription
      // (which waits for that batch) never ends.
      server().detach(new NerveError('INTERNAL', `Correlator thread exited with code ${code}.`))
      if (closing) return
      started?.(new NerveError('INTERNAL', `Correlator thread exited with code ${code} while starting.`))
      if (startedAt > 0 && Date.now() - startedAt >= healthyRunMs) failures = 0
      startedAt = 0
      const delay = Math.min(maxRestartDelayMs, restartDelayMs * 2 ** Math.min(failures, 16))
      failures++
      log.error({ exit_code: code, retry_in_ms: delay }, 'Correlator thread stopped; starting another.')
      setTimeout(restart, delay).unref()
    })
  }

  worker = spawn()
  const bus = servePortBus(deps.bus, worker)
  const restart = () => {
    if (closing) return
    worker = spawn()
    bus.attach(worker)
    listen(worker, () => bus)
  }
  await new Promise<void>((resolve, reject) => {
    listen(
      worker as Worker,
      () => bus,
      (err) => (err ? reject(err) : resolve()),
    )
  }).catch(async (err) => {
    closing = true
    await worker?.terminate()
    throw err
  })

  deps.metrics.addSource(
    () =>
      new Promise((resolve) => {
        if (!worker || !running) return resolve([])
        const id = nextMetricsId++
        metricsWaiting.set(id, resolve as (values: unknown) => void)
        worker.postMessage({ kind: 'metrics', id } satisfies ThreadMessage)
      }),
  )

  return {
    readiness: {
      correlator: () => (running && !closing ? { ok: true } : { ok: false, detail: 'not consuming events' }),
    },
    close: async () => {
      if (closing) return
      closing = true
      const w = worker
      if (w && running) {
        const waitMs = deps.closeTimeoutMs ?? closeTimeoutMs
        const stopped = new Promise<void>((resolve) => {
          closed = resolve
          w.once('exit', () => resolve())
          w.postMessage({ kind: 'close' } satisfies ThreadMessage)
        })
        // A worker stuck in a loop answers nothing: it is ended (its batches in flight fail at its exit,
        // so the bus's stop does not wait for them), and the restart reads again from its checkpoints.
        if (!(await settlesWithin(stopped, waitMs))) {
          log.warn({ waited_ms: waitMs }, 'The correlator thread did not stop in time; ending it.')
          await w.terminate()
        }
      }
      await bus.close()
      await w?.terminate()
    },
  }
}
