// The first pass of `nerve replay --order time` on every core: decoding threads read, decompress, parse
// and normalize whole files (replay-decode-worker.ts), and so does the main thread, which also sorts what
// they all produce (`threads` counts it: 2 is one worker and the main thread). Parts come
// in whatever order the threads finish them, each followed in time by its file's `done`; nothing that
// reaches the output depends on that order (the merge sorts by a total key, and links are applied in
// file-name order). One thread, or a small input, decodes in the main thread instead (a thread costs
// about 0.3 s to start, with its TypeScript loader).
import type { Readable } from 'node:stream'
import { setFlagsFromString } from 'node:v8'
import { Worker } from 'node:worker_threads'
import type { Config } from '../schemas/types.ts'
import {
  type DecodedPart,
  decodeReplayFile,
  type EventFilter,
  replayDecodeConfig,
} from './decode-replay-file.ts'

export type ToWorker = { type: 'file'; file: string } | { type: 'credit' }
export type ToPool =
  | { type: 'part'; part: DecodedPart }
  | { type: 'done'; file: string }
  | { type: 'error'; file: string; message: string }

export type Decoding = { type: 'part'; part: DecodedPart } | { type: 'done'; file: string }

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
  /** Parts a thread may send ahead of what the main thread has read. */
  credit?: number
}

export function decodeReplayFileParts(
  files: readonly string[],
  config: Config,
  options: DecodePoolOptions,
): AsyncGenerator<Decoding> {
  if (options.threads <= 1 || files.length <= 1) return decodeInThread(files, config, options)
  return decodeInThreads(files, config, options)
}

async function* decodeInThread(
  files: readonly string[],
  config: Config,
  options: DecodePoolOptions,
): AsyncGenerator<Decoding> {
  const decodeConfig = replayDecodeConfig(config, options)
  for (const file of files) {
    for await (const part of decodeReplayFile(file, decodeConfig, options.filter))
      yield { type: 'part', part }
    yield { type: 'done', file }
  }
}

async function* decodeInThreads(
  files: readonly string[],
  config: Config,
  options: DecodePoolOptions,
): AsyncGenerator<Decoding> {
  const queue = [...files]
  const credit = options.credit ?? 4
  /** What the threads sent, and the main thread's own lane (worker undefined). */
  const inbox: { worker?: Worker; message: ToPool }[] = []
  let wake: (() => void) | undefined
  let failure: Error | undefined
  const arrive = (worker: Worker | undefined, message: ToPool) => {
    inbox.push({ worker, message })
    wake?.()
  }
  // Each thread is a heap of its own, set up from V8's flags when it starts (a flag outranks the
  // thread's resourceLimits): its garbage is parsed records that die young, and 16 MiB semi-spaces,
  // rather than the 64 MiB that nerve's bin asks for, keep each thread about 100 MiB smaller.
  setFlagsFromString('--max-semi-space-size=16')
  // The main thread is one of the decoders: it also sorts, which takes a tenth of the first pass, and a
  // thread costs about 90 MiB of resident memory.
  const workers = Array.from({ length: Math.min(options.threads - 1, files.length - 1) }, () => {
    const worker = new Worker(new URL('./replay-decode-worker.mjs', import.meta.url), {
      workerData: {
        config,
        filterModule: options.filterModule.href,
        maxDepth: options.maxDepth,
        now: options.now,
        credit,
        env: Object.fromEntries(Object.entries(options.env).filter(([k]) => k.startsWith('AWS_'))),
      },
    })
    worker.on('message', (message: ToPool) => arrive(worker, message))
    worker.on('error', (err) => {
      failure ??= err
      wake?.()
    })
    return worker
  })
  const give = (worker: Worker) => {
    const file = queue.shift()
    if (file !== undefined) worker.postMessage({ type: 'file', file } satisfies ToWorker)
  }
  let laneCredit = credit
  let laneWake: (() => void) | undefined
  let stopped = false
  const decodeConfig = replayDecodeConfig(config, options)
  const lane = async () => {
    for (let file = queue.shift(); file !== undefined && !stopped; file = queue.shift()) {
      try {
        for await (const part of decodeReplayFile(file, decodeConfig, options.filter)) {
          while (laneCredit === 0 && !stopped)
            await new Promise<void>((resolve) => {
              laneWake = resolve
            })
          if (stopped) return
          laneCredit--
          arrive(undefined, { type: 'part', part })
        }
        arrive(undefined, { type: 'done', file })
      } catch (err) {
        arrive(undefined, { type: 'error', file, message: err instanceof Error ? err.message : String(err) })
        return
      }
    }
  }
  try {
    for (const worker of workers) give(worker)
    const laneDone = lane()
    let left = files.length
    while (left > 0) {
      if (failure) throw failure
      const next = inbox.shift()
      if (!next) {
        await new Promise<void>((resolve) => {
          wake = resolve
        })
        wake = undefined
        continue
      }
      const { worker, message } = next
      if (message.type === 'error') throw new Error(`${message.file}: ${message.message}`)
      if (message.type === 'part') {
        yield message
        if (worker) worker.postMessage({ type: 'credit' } satisfies ToWorker)
        else {
          laneCredit++
          laneWake?.()
          laneWake = undefined
        }
      } else {
        left--
        if (worker) give(worker)
        yield message
      }
    }
    await laneDone
  } finally {
    stopped = true
    laneWake?.()
    await Promise.all(workers.map((w) => w.terminate()))
  }
}
