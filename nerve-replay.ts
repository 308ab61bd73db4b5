// `nerve replay`: the composition root's replay command, in a file of its own (nerve.ts stays the one
// composition root, in two files: it reads the arguments and the config, this wires replay's reading,
// decoding, merging, correlating and output). Like every command, it imports the modules it uses when it
// runs. prepareReplay is the path bench/replay.bench.ts times.
import { statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import type { TimeOnlyEvent } from './correlate/replay-correlations.ts'
import { NerveError } from './runtime/errors.ts'
import { type Output, openOutput } from './runtime/output-file.ts'
import { terminalLine } from './runtime/terminal-text.ts'
import type { Config } from './schemas/types.ts'

/** `nerve replay`'s options, read before anything runs. */
export async function replayArgs(values: Record<string, unknown>, files: string[]) {
  const order = (values.order as string | undefined) ?? 'time'
  if (order !== 'time' && order !== 'input') {
    throw new NerveError('INPUT_INVALID', `--order must be "time" or "input", not "${order}".`)
  }
  if (files.length === 0)
    throw new NerveError(
      'INPUT_INVALID',
      'at least one FILE (a path, directory, glob or s3:// prefix) is needed.',
    )
  const { parseByteSize } = await import('./ingest/parse-byte-size.ts')
  const { parseTimeBound } = await import('./ingest/replay-file-time.ts')
  const window = {
    since: parseTimeBound(values.since as string | undefined, '--since'),
    until: parseTimeBound(values.until as string | undefined, '--until'),
  }
  // Bounds the wrong way round would keep no file and end in "the input holds no item".
  if (window.since !== undefined && window.until !== undefined && window.since >= window.until)
    throw new NerveError(
      'INPUT_INVALID',
      `--since ${values.since} is not before --until ${values.until}: no file can be in [since, until).`,
    )
  const threads = parseThreads(values.threads as string | undefined)
  // Decoding threads feed the time merge; --order input reads in argument order on the main thread, so
  // threads asked of it would be silently ignored.
  if (threads > 0 && order === 'input')
    throw new NerveError(
      'INPUT_INVALID',
      '--threads is for --order time: --order input decodes on the main thread, in argument order.',
    )
  return {
    ...values,
    order: order as 'time' | 'input',
    budgetBytes: parseByteSize(values['memory-budget'] as string | undefined, '--memory-budget'),
    window,
    threads,
  }
}

export async function replay(
  args: Record<string, unknown>,
  files: string[],
  readConfig: (values: Record<string, unknown>) => Promise<Config>,
): Promise<number> {
  // A replay's garbage is parsed records that die young, and the events it holds are few (the budget):
  // young generation semi-spaces that grow toward the bin's 64 MiB cost about 130 MiB of resident
  // memory. Kept at their starting size, a replay of 500,000 events peaked at 182 MiB instead of
  // 311 MiB, for 10% more CPU; the merge (and the main thread when no thread decodes) lets it grow to
  // replayYoungBytes.
  const { keepYoungGenerationSmall, replayYoungBytes } = await import('./ingest/replay-heap-bound.ts')
  keepYoungGenerationSmall()
  const config = await readConfig(args)
  if (args.order === 'time' && args['spill-dir'] !== undefined) checkSpillDir(args['spill-dir'] as string)
  // Opened before any input is read: a path it cannot write fails now, in one line.
  const out = await openOutput(args.out as string | undefined)
  try {
    return await replayInto(out, config, args, files, replayYoungBytes)
  } catch (err) {
    await out.abandon()
    throw err
  }
}

async function replayInto(
  out: Output,
  config: Config,
  args: Record<string, unknown>,
  files: string[],
  youngBytes: number,
): Promise<number> {
  const { order, budgetBytes, window, threads } = args as Awaited<ReturnType<typeof replayArgs>>
  const started = performance.now()
  const { resolveReplayInputs } = await import('./ingest/replay-inputs.ts')
  const { inputs, open } = await resolveReplayInputs(files, window, process.env)
  out.refuseInputs(inputs.map((input) => input.path))
  const { createReplayProgress } = await import('./ingest/replay-progress.ts')
  const progress = createReplayProgress(process.stderr, { now: () => performance.now() })
  const input = await prepareReplay(inputs, config, {
    order,
    open,
    budgetBytes,
    spillDir: (args['spill-dir'] as string | undefined) ?? tmpdir(),
    threads,
    progress: progress.update,
    now: Date.now(),
    youngBytes,
    strict: args.strict === true,
  }).catch((err: unknown) => {
    // An input that cannot be read ends the replay in one line: not after a progress line half drawn.
    progress.clear()
    open.close()
    throw err
  })
  const { createReplayRevokeTally } = await import('./sinks/replay-revoke-tally.ts')
  const revokes = createReplayRevokeTally(config)
  try {
    progress.clear()
    for (const reason of input.rejectedFiles)
      process.stderr.write(
        `nerve replay: ${terminalLine(reason)} The file is rejected: none of its records is used.\n`,
      )
    for (const bad of input.invalid.slice(0, 20)) {
      const why = bad.problems.map((p) => `${p.path || '/'} ${p.message}`).join('; ')
      process.stderr.write(
        `replay: ${terminalLine(bad.file ?? 'input')}: item ${bad.index} rejected: ${terminalLine(why)}\n`,
      )
    }
    if (input.invalidCount > 20)
      process.stderr.write(`replay: … and ${input.invalidCount - 20} more rejected\n`)
    let buffer = ''
    for (const event of input.events()) {
      for (const correlation of input.replayer.push(event).correlations) {
        revokes.decide(correlation)
        buffer += `${JSON.stringify(correlation)}\n`
        if (buffer.length > 1 << 16) {
          await out.write(buffer)
          buffer = ''
        }
      }
    }
    // Named once read: the first copy of each was kept (DESIGN.md "Dedup"); ids escaped, cut at 128.
    for (const id of input.replayer.conflictingIds())
      process.stderr.write(
        `replay: event id ${terminalLine(id.slice(0, 128))}: a later copy differs from the first, which was kept (a forged record may have pre-empted the real one).\n`,
      )
    // No event at all (every item rejected or skipped, or none): a failure a script must see, and an
    // existing --out is left as it was, as for any replay that fails.
    if (input.replayer.counts().read === 0) await out.abandon()
    else await out.end(buffer)
  } finally {
    progress.clear()
    input.close()
    open.close()
  }
  const counts = input.replayer.counts()
  const skipped = Object.values(input.skipped).reduce((a, b) => a + (b ?? 0), 0)
  const summary = {
    read: counts.read + input.invalidCount + skipped,
    invalid: input.invalidCount,
    skipped,
    duplicate: counts.duplicate,
    duplicate_conflicts: counts.duplicate_conflicts,
    late: counts.late,
    correlations: counts.correlations,
    overflow: counts.overflow,
    ignored: counts.ignored,
    confirmations: counts.confirmations,
    ...revokes.counts(),
    future: input.futureCount,
    files_rejected: input.rejectedFiles.length,
    spilled_runs: input.spilled(),
    elapsed_ms: Math.round(performance.now() - started),
    // resourceUsage().maxRSS is in KiB: the process's peak resident memory so far.
    peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
  }
  if (counts.read === 0) {
    process.stderr.write(`nerve replay: ${nothingReplayed(summary)}\n${JSON.stringify(summary)}\n`)
    return 1
  }
  const { replayHints } = await import('./ingest/replay-hints.ts')
  const hints = replayHints({ order, ...counts, registered: config.agents.length })
  for (const hint of hints) process.stderr.write(`${hint}\n`)
  process.stderr.write(`${JSON.stringify(summary)}\n`)
  // The other files were replayed and their output written; a script still sees that one was left out.
  return input.rejectedFiles.length > 0 ? rejectedFilesExitCode : 0
}

/** The exit code of a replay that left a file out (its bytes unusable) and replayed the others. */
export const rejectedFilesExitCode = 3

/** The line of a replay that read no event: of how many items, and why none was one. */
function nothingReplayed({ read, invalid, skipped }: { read: number; invalid: number; skipped: number }) {
  if (read === 0) return 'the input holds no item: nothing was replayed.'
  const why = [
    ...(invalid > 0 ? [`${invalid} invalid`] : []),
    ...(skipped > 0 ? [`${skipped} skipped, envelopes that hold no record`] : []),
  ].join(', ')
  return `none of the ${read} items read is an event (${why}): nothing was replayed.`
}

/**
 * `--spill-dir` named in its failure, before any input is read: otherwise the first spill (or the run
 * directory made in it) fails on `DIR/nerve-replay-XXXXXX`, a name the operator never gave.
 */
function checkSpillDir(dir: string): void {
  let isDirectory: boolean
  try {
    isDirectory = statSync(dir).isDirectory()
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT' && (err as { code?: string }).code !== 'ENOTDIR')
      throw err
    throw new NerveError('INPUT_INVALID', `--spill-dir ${dir}: the directory does not exist.`)
  }
  if (!isDirectory) throw new NerveError('INPUT_INVALID', `--spill-dir ${dir}: not a directory.`)
}

function parseThreads(text: string | undefined): number {
  if (text === undefined) return 0
  const threads = Number(text)
  if (!Number.isInteger(threads) || threads < 0 || threads > 64)
    throw new NerveError('INPUT_INVALID', `--threads takes a number from 0 to 64, not "${text}".`)
  return threads
}

/**
 * `nerve replay` up to its output: the replayer and the events to push through it, in the asked order.
 * `--order time` merges the files by event time under the memory budget (mergeReplayFiles, spilling
 * sorted runs to disk); `--order input` decodes them in argument order (decodeReplayFiles, holding the
 * events, with time-only stand-ins for those no rule can use).
 */
export async function prepareReplay(
  inputs: readonly { path: string; size: number }[],
  config: Config,
  options: {
    order: 'time' | 'input'
    /** Opens a local path or an s3:// object (default: from process.env's AWS_* variables). */
    open?: (path: string) => Promise<import('node:stream').Readable>
    budgetBytes: number
    spillDir: string
    /** Decoding threads for --order time (0: the main thread decodes; 1: it decodes beside one). */
    threads: number
    progress?: (p: import('./ingest/merge-replay-files.ts').MergeProgress) => void
    /** When the replay started, epoch ms: items dated more than max_future_skew after it are rejected. */
    now?: number
    /** The size the main thread's young generation may grow to (--order time, no decoding threads). */
    youngBytes?: number
    /** A file whose bytes are unusable ends the replay, rather than being rejected alone (`--strict`). */
    strict?: boolean
  },
) {
  const { createReplay } = await import('./correlate/replay-correlations.ts')
  const { createReplayFilter, keepRaw } = await import('./correlate/replay-filter.ts')
  const { createReplayOpener } = await import('./ingest/open-replay-input.ts')
  const open = options.open ?? createReplayOpener(process.env)
  if (options.order === 'time') {
    const { mergeReplayFiles } = await import('./ingest/merge-replay-files.ts')
    const replayer = createReplay(config, { sameTimeDuplicates: true })
    const merged = await mergeReplayFiles<TimeOnlyEvent>(inputs, config, {
      maxDepth: config.http.max_depth,
      open,
      env: process.env,
      filter: createReplayFilter(config),
      filterModule: new URL('./correlate/replay-filter.ts', import.meta.url),
      threads: options.threads,
      // One thread: the main thread decodes beside it (two lanes for one more heap); more: only they do.
      mainDecodes: options.threads === 1,
      budgetBytes: options.budgetBytes,
      spillDir: options.spillDir,
      progress: options.progress,
      now: options.now,
      youngBytes: options.youngBytes,
      strict: options.strict,
    })
    return { replayer, ...merged, events: merged.read }
  }
  const { decodeReplayFiles } = await import('./ingest/decode-replay-files.ts')
  const replayer = createReplay(config)
  const decoded = await decodeReplayFiles(
    inputs.map((i) => i.path),
    config,
    {
      maxDepth: config.http.max_depth,
      open,
      keepRaw,
      standIn: replayer.standIn,
      now: options.now,
      strict: options.strict,
    },
  )
  return {
    replayer,
    invalid: decoded.invalid,
    invalidCount: decoded.invalid.length,
    futureCount: decoded.invalid.filter((item) => item.reason === 'future_time').length,
    rejectedFiles: decoded.rejectedFiles,
    skipped: decoded.skipped,
    events: () => decoded.events,
    spilled: () => 0,
    close: () => {},
  }
}
