// `nerve replay --order time` in bounded memory. Two passes over the input:
// 1. every file is read in parts and normalized (learning credential links, as decodeReplayFiles does);
//    each event becomes one JSON line (its time-only stand-in when no rule can use it, without its raw
//    record unless something reads it) handed to an external sort that spills sorted runs to disk when
//    the memory budget is reached;
// 2. the runs are merged in (event time, nanoseconds, id, bytes) order and each event is resolved with
//    every link of the whole input, so a credential issued in a later file still names earlier calls.
// Files are read in the order of their names, not of the arguments: links and the list of rejected items
// then do not depend on how the files were given, and neither do the output bytes.
import { statSync } from 'node:fs'
import type { Config, NormalizedEvent } from '../schemas/types.ts'
import { createEventDecoder, type Decoded, type InvalidItem } from './decode-events.ts'
import type { UnresolvedEvent } from './normalized-draft.ts'
import { type ReplayReadOptions, readReplayParts } from './read-replay-files.ts'
import { createSortedRuns, type SortKey } from './sorted-runs.ts'

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

export type MergeReplayOptions<S> = Omit<ReplayReadOptions, 'progress'> & {
  keepRaw: (event: UnresolvedEvent) => boolean
  standIn?: (event: UnresolvedEvent) => S | undefined
  /** Bytes of event lines held in memory before a sorted run is spilled. */
  budgetBytes: number
  /** Where the spill's private temp dir is made. */
  spillDir: string
  /** How many rejected items are kept to show (all are counted). */
  keepInvalid?: number
  /** Called after each part read and every `progressEvery` merged events. */
  progress?: (p: MergeProgress) => void
  progressEvery?: number
}

export type MergedReplay<S> = Pick<Decoded, 'skipped'> & {
  /** The first `keepInvalid` rejected items, in file-name order. */
  invalid: InvalidItem[]
  invalidCount: number
  /** Events held for the merge (stand-ins included). */
  events: number
  /** Sorted runs written to disk so far (0 when everything fit the budget). */
  spilled(): number
  /** Every event, resolved, in merge order; call once. */
  read(): Generator<NormalizedEvent | S>
  /** Removes the spill dir. */
  close(): void
}

export async function mergeReplayFiles<S extends SortKey>(
  paths: readonly string[],
  config: { agents: Config['agents']; revoke: Pick<Config['revoke'], 'self_identities'> },
  options: MergeReplayOptions<S>,
): Promise<MergedReplay<S>> {
  const files = [...paths].sort()
  const sizes = new Map(files.map((f) => [f, statSync(f).size]))
  const totalBytes = [...sizes.values()].reduce((a, b) => a + b, 0)
  const keepInvalid = options.keepInvalid ?? 20
  const decoder = createEventDecoder(config)
  const runs = createSortedRuns({ budgetBytes: options.budgetBytes, spillDir: options.spillDir })
  const invalid: InvalidItem[] = []
  let invalidCount = 0
  const skipped: Decoded['skipped'] = {}
  const progress = { phase: 'read' as MergeProgress['phase'], files: 0, bytes: 0, events: 0 }
  let current: string | undefined
  const tell = (p: Partial<MergeProgress>) =>
    options.progress?.({ ...progress, totalFiles: files.length, totalBytes, ...p })
  try {
    for await (const part of readReplayParts(files, {
      maxDepth: options.maxDepth,
      partItems: options.partItems,
    })) {
      if (part.file !== current) {
        if (current !== undefined) doneWith(current)
        current = part.file
      }
      const normalized = decoder.normalize('any', part.items, { via: 'replay', receivedAt: 0 })
      for (const draft of normalized.drafts) {
        const standIn = options.standIn?.(draft)
        if (standIn !== undefined) runs.add(standIn, JSON.stringify(standIn))
        else {
          if (!options.keepRaw(draft)) draft.raw = null
          runs.add(draft, JSON.stringify(draft))
        }
      }
      invalidCount += normalized.invalid.length
      for (const item of normalized.invalid) if (invalid.length < keepInvalid) invalid.push(item)
      for (const [reason, count] of Object.entries(normalized.skipped) as [
        keyof Decoded['skipped'],
        number,
      ][])
        skipped[reason] = (skipped[reason] ?? 0) + count
      progress.events = runs.count()
      tell({})
    }
    if (current !== undefined) doneWith(current)
  } catch (err) {
    runs.close()
    throw err
  }

  function doneWith(file: string) {
    progress.files++
    progress.bytes += sizes.get(file) ?? 0
  }

  const total = runs.count()
  const every = options.progressEvery ?? 50_000
  function* read(): Generator<NormalizedEvent | S> {
    const one: UnresolvedEvent[] = []
    let handed = 0
    tell({ phase: 'merge', events: 0, total })
    for (const value of runs.read<UnresolvedEvent | S>()) {
      handed++
      if (handed % every === 0) tell({ phase: 'merge', events: handed, total, eventTime: value.time })
      if ('ignored' in value) {
        yield value as S
        continue
      }
      one[0] = value as UnresolvedEvent
      yield decoder.resolve(one).events[0] as NormalizedEvent
    }
  }

  return {
    invalid,
    invalidCount,
    skipped,
    events: total,
    spilled: runs.spilled,
    read,
    close: runs.close,
  }
}
