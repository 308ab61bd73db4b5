// A decoding thread of `nerve replay --order time`: files in (one at a time, from the pool), decoded into
// sorted runs of its own (decode-replay-file.ts, sorted-runs.ts) under its share of the memory budget;
// out go each run written, and each file's rejected items, links and count of events. On `finish` it
// writes what it holds as a last run. It runs as plain JavaScript, bundled with the replay filter at run
// time (replay-worker-bundle.ts): the bundle's entry hands startDecodeWorker the filter's factory.
import { join } from 'node:path'
import { parentPort, threadId, workerData } from 'node:worker_threads'
import type { Config } from '../schemas/types.ts'
import { decodeReplayFile, type EventFilter, replayDecodeConfig } from './decode-replay-file.ts'
import { postedError } from './error-across-threads.ts'
import { createReplayOpener } from './open-replay-input.ts'
import type { ToPool, ToWorker } from './replay-decode-pool.ts'
import { createHeapBound } from './replay-heap-bound.ts'
import { createRunWriter } from './sorted-runs.ts'

/** The longest a thread holds its count of events decoded before telling the pool (progress). */
const countEveryMs = 100

type WorkerData = {
  config: Config
  maxDepth: number
  now?: number
  budgetBytes: number
  runDir: string
  keepInvalid: number
  strict?: boolean
  env: Record<string, string>
}

/** Serves the pool (replay-decode-pool.ts) until it sends `finish`. */
export function startDecodeWorker(createReplayFilter: (config: Config) => EventFilter): void {
  const data = workerData as WorkerData
  const { config, maxDepth, now, env, keepInvalid, strict } = data
  const port = parentPort as NonNullable<typeof parentPort>
  const post = (message: ToPool) => port.postMessage(message)
  const filter = createReplayFilter(config)
  const decodeConfig = replayDecodeConfig(config, { maxDepth, now, strict, open: createReplayOpener(env) })
  let runNumber = 0
  /** Set once `finish` came: the run written then hands the thread's records over, it is no spill. */
  let finishing = false
  const runs = createRunWriter({
    budgetBytes: data.budgetBytes,
    newRunPath: () => join(data.runDir, `run-t${threadId}-${runNumber++}.bin`),
    onRun: (run) => post({ type: 'run', run, spill: !finishing }),
  })
  // A full collection, checked every 4 parts, when the old generation outgrows 24 MiB and twice what it
  // held after the last one. A CloudTrail file is one JSON text of about 1.25 MB: its strings go to V8's
  // large-object space, which only a full collection frees, and at 48 MiB checked every 20 parts two
  // threads' dead texts (up to 21 MiB each) put two lanes over replay's 256 MiB.
  const heap = createHeapBound({ maxOldBytes: 24 * 1024 * 1024, every: 4 })
  // Event counts go out with each file's `done`, and on their own only for a file that takes longer than
  // `countEveryMs`, not once per part: a message per part (250 records) was 2.0-2.6 % of a thread's CPU
  // profile (postMessage), and each woke the main thread, which only shows them as progress.
  let unposted = 0
  let postedAt = performance.now()
  const takeCount = () => {
    const events = unposted
    unposted = 0
    postedAt = performance.now()
    return events
  }
  const onPart = (events: number) => {
    heap.tick()
    unposted += events
    if (performance.now() - postedAt >= countEveryMs) post({ type: 'part', events: takeCount() })
  }

  // One message at a time: the pool sends the next file when this one is done.
  let work = Promise.resolve()
  port.on('message', (message: ToWorker) => {
    work = work.then(async () => {
      if (message.type === 'finish') {
        finishing = true
        runs.flush()
        post({ type: 'finished' })
        return
      }
      try {
        const done = await decodeReplayFile(message.file, decodeConfig, filter, runs, { keepInvalid, onPart })
        post({ type: 'done', done, events: takeCount() })
      } catch (err) {
        post({ type: 'error', file: message.file, error: postedError(err) })
      }
    })
  })
}
