// One replay file → sorted-run records of its events: the first pass of `nerve replay --order time`, run
// in a decoding thread (replay-decode-pool.ts) or, for small inputs, in the main one. Each event is one
// record: its time-only stand-in (id, time, the ignored reason) when no rule can use it, else the
// normalized event's JSON without its raw record unless something reads it. Each file gets a fresh decoder, so the credential
// links a file issues are the same whichever thread reads it and whatever it read before; the merge
// applies them in file-name order.
import type { Readable } from 'node:stream'
import { NerveError } from '../runtime/errors.ts'
import type { Config, IdentityLink } from '../schemas/types.ts'
import { createEventDecoder, type Decoded, type InvalidItem } from './decode-events.ts'
import type { UnresolvedEvent } from './normalized-draft.ts'
import { readReplayParts } from './read-replay-files.ts'
import { eventKind, type SortKey, standInKind } from './sorted-run-records.ts'
import type { RunWriter } from './sorted-runs.ts'

export type ReplayDecodeConfig = {
  agents: Config['agents']
  revoke: Pick<Config['revoke'], 'self_identities'>
  ingest?: Partial<Pick<Config['ingest'], 'max_future_skew'>>
  clusters?: Config['clusters']
  maxDepth: number
  /** When the replay started, epoch ms: items dated more than max_future_skew after it are rejected. */
  now?: number
  /** Opens a path (local or s3://) as bytes. */
  open?: (path: string) => Promise<Readable>
  /** A file whose bytes are unusable ends the replay (`--strict`), rather than being rejected alone. */
  strict?: boolean
}

export type EventFilter = {
  keepRaw: (event: UnresolvedEvent) => boolean
  /** Drops, in place, the fields nothing after the merge reads (they are not written to the runs). */
  leaveOutUnread?: (event: UnresolvedEvent) => void
  standIn?: (event: UnresolvedEvent) => (SortKey & { ignored: string }) | undefined
}

/** What decoding a file gave beside its events: what was rejected or skipped, the links it issued. */
export type DecodedFile = {
  file: string
  /** The first `keepInvalid` rejected items, in input order. */
  invalid: InvalidItem[]
  invalidCount: number
  /** Of the rejected items, those dated more than max_future_skew after the replay started. */
  futureCount: number
  skipped: Decoded['skipped']
  links: IdentityLink[]
  /**
   * Set when the file's bytes turned out unusable (a .gz truncated or with bytes after its gzip data):
   * why, naming the file. Nothing of it is kept (events, rejected items, links); `events` is how many of
   * its events onPart had been told of before, to take back from the count.
   */
  rejected?: { reason: string; events: number }
}

/** The decoding settings of a replay's threads, from its config. */
export const replayDecodeConfig = (
  config: Pick<Config, 'agents' | 'revoke' | 'ingest' | 'clusters'>,
  options: {
    maxDepth: number
    now?: number
    open?: (path: string) => Promise<Readable>
    strict?: boolean
  },
): ReplayDecodeConfig => ({
  agents: config.agents,
  revoke: config.revoke,
  ingest: config.ingest,
  clusters: config.clusters,
  maxDepth: options.maxDepth,
  now: options.now,
  open: options.open,
  strict: options.strict,
})

/**
 * Decodes one file into `runs`: each event a record of its sort key and its time-only stand-in (the
 * ignored reason) or its JSON. `onPart` is told how many events each part of the file gave.
 */
export async function decodeReplayFile(
  file: string,
  config: ReplayDecodeConfig,
  filter: EventFilter,
  runs: RunWriter,
  options: { keepInvalid: number; onPart?: (events: number) => void },
): Promise<DecodedFile> {
  const links: IdentityLink[] = []
  const decoder = createEventDecoder(config, { onLink: (link) => links.push(link) })
  const done: DecodedFile = { file, invalid: [], invalidCount: 0, futureCount: 0, skipped: {}, links }
  let events = 0
  runs.begin()
  for await (const part of readReplayParts([file], { maxDepth: config.maxDepth, open: config.open })) {
    if (part.rejected !== undefined) {
      runs.discard()
      if (config.strict) throw new NerveError('INPUT_INVALID', part.rejected)
      return {
        file,
        invalid: [],
        invalidCount: 0,
        futureCount: 0,
        skipped: {},
        links: [],
        rejected: { reason: part.rejected, events },
      }
    }
    const normalized = decoder.normalize('any', part.items, {
      via: 'replay',
      receivedAt: 0,
      now: config.now,
      // A record inside a CloudWatch Logs message is parsed apart from the file: held to the same depth.
      maxDepth: config.maxDepth,
    })
    for (const draft of normalized.drafts) {
      const standIn = filter.standIn?.(draft)
      if (standIn !== undefined) {
        runs.add(standIn, standInKind, standIn.ignored)
        continue
      }
      if (!filter.keepRaw(draft)) draft.raw = null
      filter.leaveOutUnread?.(draft)
      runs.add(draft, eventKind, JSON.stringify(draft))
    }
    done.invalidCount += normalized.invalid.length
    for (const item of normalized.invalid) {
      if (item.reason === 'future_time') done.futureCount++
      if (done.invalid.length < options.keepInvalid) done.invalid.push(item)
    }
    for (const [reason, count] of Object.entries(normalized.skipped) as [keyof Decoded['skipped'], number][])
      done.skipped[reason] = (done.skipped[reason] ?? 0) + count
    events += normalized.drafts.length
    options.onPart?.(normalized.drafts.length)
  }
  runs.commit()
  return done
}
