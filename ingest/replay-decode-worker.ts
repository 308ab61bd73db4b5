// A decoding thread of `nerve replay --order time`: it claims files one at a time (replay-file-claims.ts,
// from the back of the list the pool gave it) and decodes each into sorted runs of its own
// (decode-replay-file.ts, sorted-runs.ts) under its share of the memory budget; out go each run written,
// and each file's rejected items, links and count of events. When no file is left it writes what it holds
// as a last run. It runs as plain JavaScript, bundled with the replay filter at run time
// (replay-worker-bundle.ts): the bundle's entry hands startDecodeWorker the filter's factory.
import { join } from 'node:path'
import { parentPort, threadId, workerData } from 'node:worker_threads'
import type { Config } from '../schemas/types.ts'
import { decodeReplayFile, type EventFilter, replayDecodeConfig } from './decode-replay-file.ts'
import { postedError } from './error-across-threads.ts'
import { createReplayOpener } from './open-replay-input.ts'
import type { ToPool } from './replay-decode-pool.ts'
import { claimFromBack } from './replay-file-claims.ts'
import { createHeapBound } from './replay-heap-bound.ts'
import { createRunWriter } from './sorted-runs.ts'

/** The longest a thread holds its count of events decoded before telling the pool (progress). */
const countEveryMs = 100

type WorkerData = {
  /** Every file of the replay, in name order; `claims` says which are still to read (fileClaims). */
  files: string[]
  claims: SharedArrayBuffer
  config: Config
  maxDepth: number
  now?: number
  budgetBytes: number
  runDir: string
  keepInvalid: number
  strict?: boolean
  env: Record<string, string>
}

/** Decodes the files it can claim, then hands its last run over and says `finished`. */
export function startDecodeWorker(createReplayFilter: (config: Config) => EventFilter): void {
  const data = workerData as WorkerData
  const { config, maxDepth, now, env, keepInvalid, strict } = data
  const port = parentPort as NonNullable<typeof parentPort>
  const post = (message: ToPool) => port.postMessage(message)
  const filter = createReplayFilter(config)
  const decodeConfig = replayDecodeConfig(config, { maxDepth, now, strict, open: createReplayOpener(env) })
  let runNumber = 0
  /** Set once no file is left: the run written then hands the thread's records over, it is no spill. */
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

  const next = claimFromBack(data.claims)
  const decodeAll = async () => {
    for (let at = next(); at !== undefined; at = next()) {
      const file = data.files[at] as string
      try {
        const done = await decodeReplayFile(file, decodeConfig, filter, runs, { keepInvalid, onPart })
        post({ type: 'done', done, events: takeCount() })
      } catch (err) {
        // The replay ends with the first such file in name order: the files before this one (claimed from
        // the back, all of this thread's next ones) are still read, and the pool keeps the lowest index.
        runs.discard()
        post({ type: 'error', file, at, error: postedError(err) })
      }
    }
    finishing = true
    runs.flush()
    post({ type: 'finished' })
  }
  // Its last run not written (the disk full): the replay ends as for a file's error.
  decodeAll().catch((err) => post({ type: 'error', file: data.runDir, error: postedError(err) }))
}
