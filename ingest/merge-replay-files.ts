// `nerve replay --order time` in bounded memory. Two passes over the input:
// 1. every file is read in parts and normalized, in decoding threads when there are several
//    (replay-decode-pool.ts), each event one binary record (decode-replay-file.ts) in the sorted runs its
//    decoder writes to disk when its share of the memory budget is reached (sorted-runs.ts); the
//    credential links each file issues are learned in file-name order;
// 2. the runs are merged in (event time, nanoseconds, id, bytes) order, each opened only when the merge
//    reaches its first event, and each event is resolved with every link of the whole input, so a
//    credential issued in a later file still names earlier calls.
// Files are read in the order of their names, not of the arguments: links and the list of rejected items
// then do not depend on how the files were given, and neither do the output bytes.
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import type { Config, IdentityLink, NormalizedEvent } from '../schemas/types.ts'
import { createEventDecoder, type Decoded, type InvalidItem } from './decode-events.ts'
import type { DecodedFile, EventFilter } from './decode-replay-file.ts'
import { mergeRuns } from './merge-sorted-runs.ts'
import type { UnresolvedEvent } from './normalized-draft.ts'
import { decodeReplayRuns } from './replay-decode-pool.ts'
import { createHeapBound } from './replay-heap-bound.ts'
import { makeSpillDir } from './replay-spill-dir.ts'
import type { ReplayObject } from './s3-replay-objects.ts'
import { eventKind, type MemoryRun, type RunInfo, type SortKey } from './sorted-run-records.ts'

export type MergeProgress = {
  phase: 'read' | 'merge'
  files: number
  totalFiles: number
  /** Bytes of the files read so far (as stored: compressed for .gz), of totalBytes. */
  bytes: number
  totalBytes: number
  /** Events read (phase read) or handed on (phase merge), of `total` (known in phase merge). */
  events: number
  total?: number
  /** Event time reached (phase merge), epoch ms. */
  eventTime?: number
}

export type MergeReplayOptions = {
  maxDepth: number
  /** When the replay started, epoch ms (max_future_skew is judged against it). */
  now?: number
  /** Opens a path (local or s3://) in the main thread; decoding threads make theirs from `env`. */
  open: (path: string) => Promise<Readable>
  env: Readonly<Record<string, string | undefined>>
  /** What decides stand-ins and raw records, and the module that exports it for decoding threads. */
  filter: EventFilter
  filterModule: URL
  /**
   * Decoding threads (0: decode in the main thread). A thread costs about 0.3 s to start and 40-75 MiB
   * of resident memory (replay-decode-pool.ts).
   */
  threads: number
  /** The main thread decodes beside the decoding threads (it always does without any). */
  mainDecodes?: boolean
  /**
   * The size the main thread's young generation may grow to when it decodes (no decoding threads) and
   * when it merges (replay-heap-bound.ts).
   */
  youngBytes?: number
  /** Bytes of event records held in memory (by all decoders) before sorted runs are spilled. */
  budgetBytes: number
  /** Where the spill's private temp dir is made. */
  spillDir: string
  /** How many rejected items are kept to show (all are counted). */
  keepInvalid?: number
  /** A file whose bytes are unusable ends the replay, rather than being rejected alone (`--strict`). */
  strict?: boolean
  /** Called after each part read and every `progressEvery` merged events. */
  /** Most runs merged at once (more that overlap are merged in passes first). */
  fanIn?: number
  progress?: (p: MergeProgress) => void
  progressEvery?: number
}

export type MergedReplay<S> = Pick<Decoded, 'skipped'> & {
  /** The first `keepInvalid` rejected items, in file-name order. */
  invalid: InvalidItem[]
  invalidCount: number
  /** Of the rejected items, those dated more than max_future_skew after the replay started. */
  futureCount: number
  /** The files rejected whole (their bytes unusable), in file-name order: why, naming the file. */
  rejectedFiles: string[]
  /** Events held for the merge (stand-ins included). */
  events: number
  /**
   * Sorted runs written to disk because the records outgrew the memory budget (a decoder's share of it
   * full, or more runs than the merge opens at once): 0 when everything fit, with or without decoding
   * threads. A decoding thread's last run, written at the end to hand its records over, is not counted.
   */
  spilled(): number
  /** Every event, resolved, in merge order; call once. */
  read(): Generator<NormalizedEvent | S>
  /** Removes the spill dir. */
  close(): void
}

/** The signals that end a replay early. */
const interrupts = ['SIGINT', 'SIGTERM'] as const

export async function mergeReplayFiles<S extends SortKey>(
  inputs: readonly ReplayObject[],
  config: Config,
  options: MergeReplayOptions,
): Promise<MergedReplay<S>> {
  const byPath = new Map(inputs.map((i) => [i.path, i.size]))
  const files = [...byPath.keys()].sort()
  const order = new Map(files.map((f, n) => [f, n]))
  const sizes = files.map((f) => byPath.get(f) as number)
  const totalBytes = sizes.reduce((a, b) => a + b, 0)
  const keepInvalid = options.keepInvalid ?? 20
  // The merge's young generation may grow to youngBytes with or without decoding threads: the threads
  // have ended by then, and the merge's heap holds little (with two lanes it peaked at 112-135 MiB
  // beside the decoding phase's 220-250). Held at its starting size after threads, the merge of 501,000
  // events ran 774 scavenges where it runs about 250 alone. The main thread decoding alone grows it too.
  const youngBytes = options.youngBytes
  const decoder = createEventDecoder(config, { agentSummaries: false })
  const dir = makeSpillDir(options.spillDir)
  let runNumber = 0
  const newRunPath = () => join(dir, `run-${runNumber++}.bin`)
  const runs: RunInfo[] = []
  let spilled = 0
  /** Rejected items to show, as (file number, item) in file-name then input order. */
  let invalid: { file: number; seq: number; item: InvalidItem }[] = []
  let invalidCount = 0
  let futureCount = 0
  const skipped: Decoded['skipped'] = {}
  // The links of each file, applied in file-name order once every earlier file is done.
  const links = new Map<number, IdentityLink[]>()
  let applied = 0
  const progress = { phase: 'read' as MergeProgress['phase'], files: 0, bytes: 0, events: 0 }
  const tell = (p: Partial<MergeProgress>) =>
    options.progress?.({ ...progress, totalFiles: files.length, totalBytes, ...p })
  const rejectedFiles: { file: number; reason: string }[] = []
  const onDone = (done: DecodedFile) => {
    const at = order.get(done.file) as number
    if (done.rejected) {
      rejectedFiles.push({ file: at, reason: done.rejected.reason })
      progress.events -= done.rejected.events
    }
    links.set(at, done.links)
    for (; links.has(applied); applied++) {
      decoder.addLinks(links.get(applied) ?? [])
      links.delete(applied)
    }
    invalidCount += done.invalidCount
    futureCount += done.futureCount
    if (done.invalid.length > 0) {
      invalid.push(...done.invalid.map((item, seq) => ({ file: at, seq, item })))
      invalid = invalid.sort((a, b) => a.file - b.file || a.seq - b.seq).slice(0, keepInvalid)
    }
    for (const [reason, count] of Object.entries(done.skipped) as [keyof Decoded['skipped'], number][])
      skipped[reason] = (skipped[reason] ?? 0) + count
    progress.files++
    progress.bytes += sizes[at] as number
    tell({})
  }
  // Interrupted (Ctrl-C, a kill), the process ends without its finally blocks: the dir, with its runs
  // of replayed records and the decoding threads' bundle, goes first, then the signal does what it did.
  // (A decoding thread may add a run while the dir goes: retried, and the signal is raised again anyway.)
  const onSignal = (signal: NodeJS.Signals) => {
    try {
      close()
    } finally {
      process.kill(process.pid, signal)
    }
  }
  const close = () => {
    for (const signal of interrupts) process.off(signal, onSignal)
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
  }
  for (const signal of interrupts) process.on(signal, onSignal)
  let memory: MemoryRun | undefined
  try {
    memory = await decodeReplayRuns(files, config, {
      ...options,
      youngBytes,
      runDir: dir,
      newRunPath,
      keepInvalid,
      onEvents: (count) => {
        progress.events += count
        tell({})
      },
      onRun: (run, spill) => {
        if (spill) spilled++
        runs.push(run)
      },
      onDone,
    })
  } catch (err) {
    close()
    throw err
  }

  const total = progress.events
  const every = options.progressEvery ?? 50_000
  function* read(): Generator<NormalizedEvent | S> {
    const one: UnresolvedEvent[] = []
    let handed = 0
    tell({ phase: 'merge', events: 0, total })
    const merged = mergeRuns(runs, memory, {
      fanIn: options.fanIn,
      newRunPath,
      onRun: () => spilled++,
    })
    memory = undefined
    const heap = createHeapBound({ maxOldBytes: 48 * 1024 * 1024, youngBytes, youngEvery: 1_000 })
    for (const record of merged) {
      handed++
      heap.tick()
      if (handed % every === 0) tell({ phase: 'merge', events: handed, total, eventTime: record.time })
      if (record.kind !== eventKind) {
        yield {
          id: record.id,
          time: record.time,
          time_ns: record.time_ns,
          ignored: record.text(),
        } as unknown as S
        continue
      }
      one[0] = JSON.parse(record.text()) as UnresolvedEvent
      yield decoder.resolve(one).events[0] as NormalizedEvent
    }
  }

  return {
    invalid: invalid.map((i) => i.item),
    invalidCount,
    futureCount,
    rejectedFiles: rejectedFiles.sort((a, b) => a.file - b.file).map((r) => r.reason),
    skipped,
    events: total,
    spilled: () => spilled,
    read,
    close,
  }
}
