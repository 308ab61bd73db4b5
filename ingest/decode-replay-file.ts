// One replay file → the sortable lines of its events, part by part: the first pass of `nerve replay
// --order time`, run in a decoding thread (replay-decode-pool.ts) or, for small inputs, in the main one.
// Each event is one JSON line: its time-only stand-in when no rule can use it, else the normalized event
// without its raw record unless something reads it. Each file gets a fresh decoder, so the credential
// links a file issues are the same whichever thread reads it and whatever it read before; the merge
// applies them in file-name order.
import type { Readable } from 'node:stream'
import type { Config, IdentityLink } from '../schemas/types.ts'
import { createEventDecoder, type Decoded, type InvalidItem } from './decode-events.ts'
import type { UnresolvedEvent } from './normalized-draft.ts'
import { readReplayParts } from './read-replay-files.ts'
import type { SortKey } from './sorted-runs.ts'

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
}

export type EventFilter = {
  keepRaw: (event: UnresolvedEvent) => boolean
  standIn?: (event: UnresolvedEvent) => (SortKey & object) | undefined
}

/** A part of a file: its events' keys and lines, what was rejected or skipped, the links it issued. */
export type DecodedPart = {
  file: string
  keys: SortKey[]
  lines: string[]
  invalid: InvalidItem[]
  skipped: Decoded['skipped']
  links: IdentityLink[]
}

/** The decoding settings of a replay's threads, from its config. */
export const replayDecodeConfig = (
  config: Pick<Config, 'agents' | 'revoke' | 'ingest' | 'clusters'>,
  options: { maxDepth: number; now?: number; open?: (path: string) => Promise<Readable> },
): ReplayDecodeConfig => ({
  agents: config.agents,
  revoke: config.revoke,
  ingest: config.ingest,
  clusters: config.clusters,
  maxDepth: options.maxDepth,
  now: options.now,
  open: options.open,
})

export async function* decodeReplayFile(
  file: string,
  config: ReplayDecodeConfig,
  filter: EventFilter,
): AsyncGenerator<DecodedPart> {
  const links: IdentityLink[] = []
  const decoder = createEventDecoder(config, { onLink: (link) => links.push(link) })
  for await (const part of readReplayParts([file], { maxDepth: config.maxDepth, open: config.open })) {
    const normalized = decoder.normalize('any', part.items, { via: 'replay', receivedAt: 0, now: config.now })
    const keys: SortKey[] = []
    const lines: string[] = []
    for (const draft of normalized.drafts) {
      const standIn = filter.standIn?.(draft)
      if (standIn !== undefined) {
        keys.push({ time: standIn.time, time_ns: standIn.time_ns, id: standIn.id })
        lines.push(JSON.stringify(standIn))
        continue
      }
      if (!filter.keepRaw(draft)) draft.raw = null
      keys.push({ time: draft.time, time_ns: draft.time_ns, id: draft.id })
      lines.push(JSON.stringify(draft))
    }
    yield {
      file,
      keys,
      lines,
      invalid: normalized.invalid,
      skipped: normalized.skipped,
      links: links.splice(0),
    }
  }
}
