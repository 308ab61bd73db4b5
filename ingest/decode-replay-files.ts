// `nerve replay`'s input, decoded: the files are read in parts (read-replay-files.ts) and each part is
// normalized as it comes, learning credential links; the events are resolved once everything is read, so
// a credential issued in a later file still names the workload of earlier calls. Replay holds every event
// until it can sort them, so it holds as little as it can: a part's parsed items are garbage once it is
// normalized, an event the correlator will only ever ignore is replaced by the stand-in `standIn` gives
// (its id and time), and the others keep their raw record only when `keepRaw` says something reads it.
import type { Config, NormalizedEvent } from '../schemas/types.ts'
import { createEventDecoder, type Decoded } from './decode-events.ts'
import type { UnresolvedEvent } from './normalized-draft.ts'
import { type ReplayReadOptions, readReplayParts } from './read-replay-files.ts'

/** The events in input order, each a NormalizedEvent or its stand-in. */
export type ReplayInput<S> = Pick<Decoded, 'invalid' | 'skipped'> & { events: (NormalizedEvent | S)[] }

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
  },
): Promise<ReplayInput<S>> {
  const decoder = createEventDecoder(config)
  const held: (UnresolvedEvent | S)[] = []
  /** Positions in `held` of the drafts kept whole, to resolve at the end. */
  const whole: number[] = []
  const invalid: Decoded['invalid'] = []
  const skipped: Decoded['skipped'] = {}
  for await (const part of readReplayParts(paths, options)) {
    const normalized = decoder.normalize('any', part.items, {
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
  const { events: resolved } = decoder.resolve(whole.map((at) => held[at] as UnresolvedEvent))
  const events = held as (NormalizedEvent | S)[]
  whole.forEach((at, n) => {
    events[at] = resolved[n] as NormalizedEvent
  })
  return { events, invalid, skipped }
}
