// The first pass of `nerve replay --order time`: decoding threads read, decompress, parse and normalize
// whole files (replay-decode-worker.ts) while the main thread waits to merge. Each thread writes its own
// sorted runs (sorted-runs.ts) under its share of the memory budget, so what crosses between threads is
// small: a path per run, and per file its rejected items, links and count of events (with a count on
// its own every 100 ms for a file that takes longer). Files are handed out in name order, one at a time,
// so each thread's runs cover about consecutive stretches of time.
// Nothing that reaches the output depends on which thread read what (the merge sorts by a total key, and
// links are applied in file-name order). With no thread (the default) the main thread decodes: a thread
// costs about 0.3 s to start and about 75 MiB of resident memory (its own heap, validators; it runs
// plain JavaScript, bundled at start by replay-worker-bundle.ts), so only two or more are worth it, where
// the cores are free.
//
// The main thread does not decode beside the threads: measured, it then grew its young generation to
// the bin's 64 MiB semi-spaces (128 MiB, whatever --semi-space-growth-factor said).
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
import { createHeapBound, keepYoungGenerationSmall } from './replay-heap-bound.ts'
import { bundleDecodeWorker } from './replay-worker-bundle.ts'
import type { MemoryRun, RunInfo } from './sorted-run-records.ts'
import { createRunWriter } from './sorted-runs.ts'

/** Decompressed bytes of the next file held while the main thread decodes the current one. */
const readAheadBytes = 4 * 1024 * 1024

export type ToWorker = { type: 'file'; file: string } | { type: 'finish' }
export type ToPool =
  | { type: 'part'; events: number }
  /** `spill`: written because the thread's share of the budget was full (not its last run, at finish). */
  | { type: 'run'; run: RunInfo; spill: boolean }
  /** `events`: those of the file not yet counted in a `part`. */
  | { type: 'done'; done: DecodedFile; events: number }
  | { type: 'finished' }
  | { type: 'error'; file: string; error: PostedError }

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
 * Decodes every file into sorted runs, in `threads` decoding threads (0: in the main thread); gives back
 * the main thread's last run, kept in memory (empty when threads decoded).
 */
export async function decodeReplayRuns(
  files: readonly string[],
  config: Config,
  options: DecodePoolOptions,
): Promise<MemoryRun> {
  const threads = Math.min(options.threads, files.length)
  if (threads <= 0) {
    const runs = createRunWriter({
      budgetBytes: options.budgetBytes,
      newRunPath: options.newRunPath,
      onRun: (run) => options.onRun(run, true),
    })
    // The next file is read and decompressed while this one is parsed (read-ahead.ts).
    const open = readAhead(options.open, files, readAheadBytes)
    const decodeConfig = replayDecodeConfig(config, { ...options, open })
    const heap = createHeapBound({ maxOldBytes: 48 * 1024 * 1024, every: 20, youngBytes: options.youngBytes })
    const onPart = (events: number) => {
      heap.tick()
      options.onEvents(events)
    }
    try {
      for (const file of files) {
        const done = await decodeReplayFile(file, decodeConfig, options.filter, runs, {
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

  // Each thread is a heap of its own, set up from V8's flags when it starts (a flag outranks the
  // thread's resourceLimits): its garbage is parsed records that die young, and 8 MiB semi-spaces,
  // rather than the 64 MiB that nerve's bin asks for, keep each thread about 110 MiB smaller (16 MiB
  // ones, 16 MiB larger each, put two lanes at 280-300 MiB; 8 MiB cost about a tenth more CPU).
  setFlagsFromString('--max-semi-space-size=8')
  const entry = await bundleDecodeWorker(options.runDir, options.filterModule)
  const queue = [...files]
  let failure: Error | undefined
  let wake: (() => void) | undefined
  let working = threads
  const fail = (err: Error) => {
    failure ??= err
    wake?.()
  }
  const workers = Array.from({ length: threads }, () => {
    const worker = new Worker(entry, {
      workerData: {
        config,
        maxDepth: options.maxDepth,
        now: options.now,
        budgetBytes: options.budgetBytes / threads,
        runDir: options.runDir,
        keepInvalid: options.keepInvalid,
        strict: options.strict,
        env: Object.fromEntries(Object.entries(options.env).filter(([k]) => k.startsWith('AWS_'))),
      },
    })
    const give = () => {
      const file = queue.shift()
      worker.postMessage(
        (file === undefined ? { type: 'finish' } : { type: 'file', file }) satisfies ToWorker,
      )
    }
    worker.on('message', (message: ToPool) => {
      if (message.type === 'part') options.onEvents(message.events)
      else if (message.type === 'run') options.onRun(message.run, message.spill)
      else if (message.type === 'done') {
        if (message.events > 0) options.onEvents(message.events)
        options.onDone(message.done)
        give()
      } else if (message.type === 'error') fail(errorFromThread(message.error))
      else {
        working--
        wake?.()
      }
    })
    worker.on('error', fail)
    give()
    return worker
  })
  try {
    while (working > 0 && !failure) {
      await new Promise<void>((resolve) => {
        wake = resolve
      })
    }
    if (failure) throw failure
    return { entries: [] }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
    // The threads set V8's semi-space growth factor back: without this, the merge's young generation
    // grew to the bin's 128 MiB.
    keepYoungGenerationSmall()
  }
}
