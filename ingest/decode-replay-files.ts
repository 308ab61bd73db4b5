// `nerve replay`'s input, decoded: the files are read in parts (read-replay-files.ts) and each part is
// normalized as it comes, learning credential links; the events are resolved once everything is read, so
// a credential issued in a later file still names the workload of earlier calls. Replay holds every event
// until it can sort them, so it holds as little as it can: a part's parsed items are garbage once it is
// normalized, an event the correlator will only ever ignore is replaced by the stand-in `standIn` gives
// (its id and time), and the others keep their raw record only when `keepRaw` says something reads it.
import { NerveError } from '../runtime/errors.ts'
import type { Config, IdentityLink, NormalizedEvent } from '../schemas/types.ts'
import { createEventDecoder, type Decoded } from './decode-events.ts'
import type { UnresolvedEvent } from './normalized-draft.ts'
import { type ReplayReadOptions, readReplayParts } from './read-replay-files.ts'

/**
 * The events in input order, each a NormalizedEvent or its stand-in; `rejectedFiles`: why each file whose
 * bytes were unusable was left out (nothing of it is kept), naming it.
 */
export type ReplayInput<S> = Pick<Decoded, 'invalid' | 'skipped'> & {
  events: (NormalizedEvent | S)[]
  rejectedFiles: string[]
}

export async function decodeReplayFiles<S = never>(
  paths: readonly string[],
  config: {
    agents: Config['agents']
    revoke: Pick<Config['revoke'], 'self_identities'>
    ingest?: Partial<Pick<Config['ingest'], 'max_future_skew'>>
  },
  options: ReplayReadOptions & {
    /** Wall-clock start of the replay: items dated more than max_future_skew after it are rejected. */
    now?: number
    keepRaw: (event: UnresolvedEvent) => boolean
    standIn?: (event: UnresolvedEvent) => S | undefined
    /** A file whose bytes are unusable ends the replay, rather than being rejected alone (`--strict`). */
    strict?: boolean
  },
): Promise<ReplayInput<S>> {
  const decoder = createEventDecoder(config)
  const held: (UnresolvedEvent | S)[] = []
  /** Positions in `held` of the drafts kept whole, to resolve at the end. */
  const whole: number[] = []
  const invalid: Decoded['invalid'] = []
  let skipped: Decoded['skipped'] = {}
  const rejectedFiles: string[] = []
  // Each file is normalized by a decoder of its own, as in time order, and its links are learned once it
  // was read whole: a file rejected at its end (a truncated .gz) then leaves nothing behind.
  let file: string | undefined
  let fileDecoder = decoder
  let fileLinks: IdentityLink[] = []
  let start = { held: 0, whole: 0, invalid: 0, skipped }
  const endFile = () => {
    if (file !== undefined) decoder.addLinks(fileLinks)
  }
  for await (const part of readReplayParts(paths, options)) {
    if (part.file !== file) {
      endFile()
      file = part.file
      fileLinks = []
      const links = fileLinks
      fileDecoder = createEventDecoder(config, { onLink: (link) => links.push(link), agentSummaries: false })
      start = { held: held.length, whole: whole.length, invalid: invalid.length, skipped: { ...skipped } }
    }
    if (part.rejected !== undefined) {
      if (options.strict) throw new NerveError('INPUT_INVALID', part.rejected)
      held.length = start.held
      whole.length = start.whole
      invalid.length = start.invalid
      skipped = start.skipped
      fileLinks.length = 0
      rejectedFiles.push(part.rejected)
      continue
    }
    const normalized = fileDecoder.normalize('any', part.items, {
      via: 'replay',
      receivedAt: 0,
      now: options.now,
    })
    for (const draft of normalized.drafts) {
      const standIn = options.standIn?.(draft)
      if (standIn !== undefined) {
        held.push(standIn)
        continue
      }
      if (!options.keepRaw(draft)) draft.raw = null
      whole.push(held.length)
      held.push(draft)
    }
    invalid.push(...normalized.invalid)
    for (const [reason, count] of Object.entries(normalized.skipped) as [keyof Decoded['skipped'], number][])
      skipped[reason] = (skipped[reason] ?? 0) + count
  }
  endFile()
  const { events: resolved } = decoder.resolve(whole.map((at) => held[at] as UnresolvedEvent))
  const events = held as (NormalizedEvent | S)[]
  whole.forEach((at, n) => {
    events[at] = resolved[n] as NormalizedEvent
  })
  return { events, invalid, skipped, rejectedFiles }
}
