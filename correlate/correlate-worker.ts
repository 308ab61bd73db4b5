// The correlate stage's worker thread (correlate-thread.ts starts it): the correlator, its checkpoints and
// their SQLite work run here, on the second core, reading and publishing through the main thread's bus
// (bus/bus-port.ts). Log lines go to the main thread's log destination; metrics are served to the main
// thread's /metrics on request.
import { parentPort, workerData } from 'node:worker_threads'
import { createPortBus } from '../bus/bus-port.ts'
import { errorCodeOf } from '../runtime/errors.ts'
import { createLogger } from '../runtime/logger.ts'
import { createMetrics } from '../runtime/metrics.ts'
import { nameThisThread } from '../runtime/thread-name.ts'
import type { Config } from '../schemas/types.ts'
import { startCorrelate } from './start-correlate.ts'

/** Messages between correlate-thread.ts and this worker that are not the bus's own. */
export type ThreadMessage =
  | { kind: 'started' }
  | { kind: 'failed'; code: string; message: string }
  | { kind: 'log'; line: string }
  | { kind: 'metrics'; id: number; metrics?: unknown }
  | { kind: 'close' }
  | { kind: 'closed' }

nameThisThread('nerve-correlate')
const port = parentPort
if (!port) throw new Error('correlate-worker.ts runs as a worker thread.')
const { config, dataDir, busFile } = workerData as { config: Config; dataDir: string; busFile?: string }

const post = (message: ThreadMessage) => port.postMessage(message)
const log = createLogger(config.log, { write: (line: string) => post({ kind: 'log', line }) } as never)
const metrics = createMetrics()
// Events are read from the bus's file on this thread: their text never crosses the main thread's loop.
const bus = createPortBus(port, config.bus.partitions, { recordsFile: busFile })
let stage: Awaited<ReturnType<typeof startCorrelate>> | undefined

port.on('message', (message: ThreadMessage | unknown) => {
  const m = message as ThreadMessage
  if (m.kind === 'metrics') {
    void metrics.registry
      .getMetricsAsJSON()
      .then((values) => post({ kind: 'metrics', id: m.id, metrics: values }))
  } else if (m.kind === 'close') {
    void (stage?.close() ?? Promise.resolve()).then(() => {
      post({ kind: 'closed' })
      port.close()
    })
  } else bus.onMessage(message)
})

try {
  stage = await startCorrelate(config, { bus, log, metrics, dataDir })
  post({ kind: 'started' })
} catch (err) {
  post({ kind: 'failed', code: errorCodeOf(err), message: err instanceof Error ? err.message : String(err) })
  port.close()
}
