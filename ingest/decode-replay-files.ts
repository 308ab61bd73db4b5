// `nerve replay`'s input, decoded: the files are read in parts (read-replay-files.ts) and each part is
// normalized as it comes, learning credential links; the events are resolved once everything is read, so
// a credential issued in a later file still names the workload of earlier calls. A part's parsed items
// are garbage once it is normalized, and an event keeps its raw record only when `keepRaw` says something
// downstream reads it: the raw record is most of an event's memory, and replay holds every event until it
// can sort them.
import type { Config } from '../schemas/types.ts'
import { createEventDecoder, type Decoded } from './decode-events.ts'
import type { UnresolvedEvent } from './normalized-draft.ts'
import { type ReplayReadOptions, readReplayParts } from './read-replay-files.ts'

export type ReplayInput = Pick<Decoded, 'events' | 'invalid' | 'skipped'>

export async function decodeReplayFiles(
  paths: readonly string[],
  config: { agents: Config['agents']; revoke: Pick<Config['revoke'], 'self_identities'> },
  options: ReplayReadOptions & { keepRaw: (event: UnresolvedEvent) => boolean },
): Promise<ReplayInput> {
  const decoder = createEventDecoder(config)
  const drafts: UnresolvedEvent[] = []
  const invalid: Decoded['invalid'] = []
  const skipped: Decoded['skipped'] = {}
  for await (const part of readReplayParts(paths, options)) {
    const normalized = decoder.normalize('any', part.items, { via: 'replay', receivedAt: 0 })
    for (const draft of normalized.drafts) {
      if (!options.keepRaw(draft)) draft.raw = null
      drafts.push(draft)
    }
    invalid.push(...normalized.invalid)
    for (const [reason, count] of Object.entries(normalized.skipped) as [keyof Decoded['skipped'], number][])
      skipped[reason] = (skipped[reason] ?? 0) + count
  }
  return { events: decoder.resolve(drafts).events, invalid, skipped }
}
