// The first pass of `nerve replay --order time`: files are read, decompressed, parsed and normalized
// whole (decode-replay-file.ts) by the decoders: the main thread, decoding threads
// (replay-decode-worker.ts), or both. Each decoder writes its own sorted runs (sorted-runs.ts) under its
// share of the memory budget, so what crosses between threads is small: a path per run, and per file its
// rejected items, links and count of events (with a count on its own every 100 ms for a file that takes
// longer). Decoders claim files themselves (replay-file-claims.ts): the main thread from the front of the
// name order, the threads from the back, so each decoder's runs cover about one stretch of time.
// Nothing that reaches the output depends on which decoder read what (the merge sorts by a total key, and
// links are applied in file-name order). A thread costs about 0.3 s to start and about 40-75 MiB of
// resident memory (its own heap, validators; it runs plain JavaScript, bundled at start by
// replay-worker-bundle.ts). By default the main thread decodes alone; `--threads 1` puts it beside one
// thread (two lanes for one more heap), `--threads 2` or more leaves the decoding to the threads.
//
// V8 sets its process-wide semi-space growth factor back to 2 whenever a heap is made, so a thread's start
// undid the factor of 1 that holds the main thread's young generation (measured: it then grew to the
// bin's 128 MiB). The main thread's heap bound sets the factor again once the threads are up, and the
// threads' young generations start at their full size, which a factor of 1 then keeps.
import type { Readable } from 'node:stream'
import { setFlagsFromString } from 'node:v8'
import { Worker } from 'node:worker_threads'
import type { Config } from '../schemas/types.ts'
import {
  type DecodedFile,
  decodeReplayFile,
  type EventFilter,
  replayDecodeConfig,
} from './decode-replay-file.ts'
import { errorFromThread, type PostedError } from './error-across-threads.ts'
import { readAhead } from './read-ahead.ts'
import { claimFromFront, fileClaims } from './replay-file-claims.ts'
import { createHeapBound, keepYoungGenerationSmall } from './replay-heap-bound.ts'
import { bundleDecodeWorker } from './replay-worker-bundle.ts'
import type { MemoryRun, RunInfo } from './sorted-run-records.ts'
import { createRunWriter } from './sorted-runs.ts'

/** Decompressed bytes of the next file held while the main thread decodes the current one. */
const readAheadBytes = 4 * 1024 * 1024

/**
 * The size the main thread's young generation may grow to while it decodes beside a thread. Looked at
 * once a part, it grows one doubling past it (a part's scavenges): 16 MiB, half of what it reaches
 * alone, the thread's 16 MiB being the rest (measured on 501,000 events: peak 234-236 MiB, against
 * 253-259 when held at 16 and ending at 32).
 */
const besideYoungBytes = 8 * 1024 * 1024

export type ToPool =
  | { type: 'part'; events: number }
  /** `spill`: written because the thread's share of the budget was full (not its last run, at finish). */
  | { type: 'run'; run: RunInfo; spill: boolean }
  /** `events`: those of the file not yet counted in a `part`. */
  | { type: 'done'; done: DecodedFile; events: number }
  /** No file left: the thread's last run is written. */
  | { type: 'finished' }
  /** `at`: the file's index; none for a failure of the thread itself (its last run not written). */
  | { type: 'error'; file: string; at?: number; error: PostedError }

export type DecodePoolOptions = {
  threads: number
  maxDepth: number
  /** When the replay started, epoch ms (max_future_skew is judged against it). */
  now?: number
  /** In the main thread: the filter itself. In decoding threads: the module exporting createReplayFilter. */
  filter: EventFilter
  filterModule: URL
  /** Opens a path in the main thread; decoding threads make their own from `env`. */
  open: (path: string) => Promise<Readable>
  /** The environment a thread's S3 client reads its endpoint from (the AWS_* variables). */
  env: Readonly<Record<string, string | undefined>>
  /** Bytes of records held in memory, shared out among the decoders. */
  budgetBytes: number
  /** The spill's private temp dir, where every decoder writes its runs. */
  runDir: string
  /** A fresh run path in runDir for the main thread (threads name theirs after their thread id). */
  newRunPath: () => string
  /** How many rejected items of a file are kept to show (all are counted). */
  keepInvalid: number
  /** A file whose bytes are unusable ends the replay, rather than being rejected alone (`--strict`). */
  strict?: boolean
  /**
   * When the main thread decodes: the size its young generation may grow to (replay-heap-bound.ts).
   * Unset, it is left as it is. Decoding threads have theirs set by flags.
   */
  youngBytes?: number
  /**
   * The main thread decodes beside the `threads` decoding threads (with none, it always does): one
   * thread beside it is two lanes for one more heap, not two.
   */
  mainDecodes?: boolean
  /** Told of events decoded, runs written and files done, as they come. */
  onEvents: (count: number) => void
  /**
   * `spill` is true for a run written because a decoder's share of the budget was full, false for the
   * last run a decoding thread writes at the end to hand its records over (the main thread keeps its own
   * last run in memory instead): replay's `spilled_runs` counts the first kind, the same on both paths.
   */
  onRun: (run: RunInfo, spill: boolean) => void
  onDone: (file: DecodedFile) => void
}

/**
 * Decodes every file into sorted runs, in `threads` decoding threads and, with none or when `mainDecodes`
 * says so, in the main thread too; gives back the main thread's last run, kept in memory (empty when
 * only threads decoded).
 */
export async function decodeReplayRuns(
  files: readonly string[],
  config: Config,
  options: DecodePoolOptions,
): Promise<MemoryRun> {
  const mainDecodes = options.mainDecodes === true
  // A thread beside the main thread needs a second file at least.
  const threads = Math.max(0, Math.min(options.threads, mainDecodes ? files.length - 1 : files.length))
  const claims = fileClaims(files.length)
  if (threads === 0) return decodeInMain(files, claims, config, options, { budgetBytes: options.budgetBytes })
  const lanes = threads + (mainDecodes ? 1 : 0)
  /** A failure of a thread itself: the replay stops at once. */
  let failure: Error | undefined
  /**
   * The first file in name order whose error ends the replay (`--strict`, a file gone): the decoders go on
   * with the files before it, so that the one reported is the first, as when the main thread reads alone.
   */
  let fileFailure: { at: number; error: Error } | undefined
  let wake: (() => void) | undefined
  const fail = (err: Error, at?: number) => {
    if (at === undefined) failure ??= err
    else if (fileFailure === undefined || at < fileFailure.at) fileFailure = { at, error: err }
    wake?.()
  }
  const pool = startThreads(files, claims, config, options, {
    threads,
    budgetBytes: options.budgetBytes / lanes,
    fail,
    finished: () => wake?.(),
  })
  try {
    const held = mainDecodes
      ? await decodeInMain(files, claims, config, options, {
          budgetBytes: options.budgetBytes / lanes,
          youngBytes: options.youngBytes === undefined ? undefined : besideYoungBytes,
          stopBefore: (at) => failure !== undefined || (fileFailure !== undefined && at > fileFailure.at),
          started: pool.started,
        })
      : { entries: [] }
    while (pool.working() > 0 && !failure) {
      await new Promise<void>((resolve) => {
        wake = resolve
      })
    }
    if (failure) throw failure
    if (fileFailure) throw fileFailure.error
    return held
  } finally {
    await pool.stop()
    // Before the merge: the threads' heaps set the growth factor back when they were made.
    keepYoungGenerationSmall()
  }
}

/**
 * The main thread's lane: the files it claims from the front, until none is left (or `beside` says a
 * thread failed), the next one read ahead while it parses this one.
 */
async function decodeInMain(
  files: readonly string[],
  claims: SharedArrayBuffer,
  config: Config,
  options: DecodePoolOptions,
  lane: {
    budgetBytes: number
    /** Beside threads: the young generation's bound (replay-heap-bound.ts) while they run. */
    youngBytes?: number
    /** Beside threads: whether to stop before the file at this index (a thread failed). */
    stopBefore?: (at: number) => boolean
    /** Beside threads: every thread's heap is made. */
    started?: Promise<void>
  },
): Promise<MemoryRun> {
  const runs = createRunWriter({
    budgetBytes: lane.budgetBytes,
    newRunPath: options.newRunPath,
    onRun: (run) => options.onRun(run, true),
  })
  // The next file is read and decompressed while this one is parsed (read-ahead.ts); beside threads, the
  // one read ahead may be claimed by a thread instead (where the two meet), and is closed unread.
  const open = readAhead(options.open, files, readAheadBytes)
  const decodeConfig = replayDecodeConfig(config, { ...options, open })
  const youngBytes = lane.started ? lane.youngBytes : options.youngBytes
  // Beside a thread, its old generation is looked at twice as often and held at 32 MiB instead of 48: on
  // 2,004,000 events the peak was 249 MiB against 260-265 (a CloudTrail file's text stays in
  // large-object space until a full collection).
  const heap = lane.started
    ? createHeapBound({ maxOldBytes: 32 * 1024 * 1024, every: 10, youngBytes })
    : createHeapBound({ maxOldBytes: 48 * 1024 * 1024, every: 20, youngBytes })
  // A thread's heap, once made, has set the growth factor back to 2: the bound sets it again.
  lane.started?.then(() => heap.youngChanged())
  const onPart = (events: number) => {
    heap.tick()
    options.onEvents(events)
  }
  const next = claimFromFront(claims)
  try {
    for (let at = next(); at !== undefined && !lane.stopBefore?.(at); at = next()) {
      const done = await decodeReplayFile(files[at] as string, decodeConfig, options.filter, runs, {
        keepInvalid: options.keepInvalid,
        onPart,
      })
      options.onDone(done)
    }
  } finally {
    open.close()
  }
  return runs.takeHeld()
}

/**
 * Starts `threads` decoding threads, which claim files from the back until none is left. `started`:
 * every thread's heap is made; `working()`: the threads that have not written their last run yet.
 */
function startThreads(
  files: readonly string[],
  claims: SharedArrayBuffer,
  config: Config,
  options: DecodePoolOptions,
  pool: {
    threads: number
    budgetBytes: number
    fail: (err: Error, at?: number) => void
    finished: () => void
  },
) {
  // Each thread is a heap of its own, set up from V8's flags when it starts (a flag outranks the
  // thread's resourceLimits): its garbage is parsed records that die young, and 8 MiB semi-spaces,
  // rather than the 64 MiB that nerve's bin asks for, keep each thread about 110 MiB smaller (16 MiB
  // ones, 16 MiB larger each, put two lanes at 280-300 MiB; 8 MiB cost about a tenth more CPU). They
  // start at that size: beside a main thread that decodes, the growth factor is held at 1.
  setFlagsFromString('--max-semi-space-size=8')
  setFlagsFromString('--min-semi-space-size=8')
  let working = pool.threads
  let workers: Worker[] = []
  const startThread = (entry: URL) => {
    const worker = new Worker(entry, {
      workerData: {
        files,
        claims,
        config,
        maxDepth: options.maxDepth,
        now: options.now,
        budgetBytes: pool.budgetBytes,
        runDir: options.runDir,
        keepInvalid: options.keepInvalid,
        strict: options.strict,
        env: Object.fromEntries(Object.entries(options.env).filter(([k]) => k.startsWith('AWS_'))),
      },
    })
    worker.on('message', (message: ToPool) => {
      if (message.type === 'part') options.onEvents(message.events)
      else if (message.type === 'run') options.onRun(message.run, message.spill)
      else if (message.type === 'done') {
        if (message.events > 0) options.onEvents(message.events)
        options.onDone(message.done)
      } else if (message.type === 'error') pool.fail(errorFromThread(message.error), message.at)
      else {
        finished = true
        if (--working === 0) pool.finished()
      }
    })
    let finished = false
    worker.on('error', (err) => pool.fail(err))
    // A thread that ends before its last run (killed, out of memory) would leave the pool waiting for it.
    worker.on('exit', (code) => {
      if (!finished) pool.fail(new Error(`A decoding thread ended (exit code ${code}) before its last run.`))
    })
    return worker
  }
  // The main thread decodes meanwhile, when it does: the bundle takes about 0.3 s.
  const made = bundleDecodeWorker(options.runDir, options.filterModule).then((entry) => {
    workers = Array.from({ length: pool.threads }, () => startThread(entry))
    // A thread that fails as it starts (out of memory, its bundle broken) is never online: its error or
    // exit settles its start too, or stop() would wait for it forever.
    return Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            for (const event of ['online', 'error', 'exit']) w.once(event, () => resolve())
          }),
      ),
    )
  })
  const started = made.then(
    () => {},
    (err: Error) => pool.fail(err),
  )
  return {
    started,
    working: () => working,
    async stop() {
      await started
      await Promise.all(workers.map((w) => w.terminate()))
    },
  }
}
