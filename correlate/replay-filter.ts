// What replay's decoding needs to know of the correlator before the events are sorted: which events it
// will only ever ignore (held as time-only stand-ins) and which keep their raw record (revoke recognition
// reads it). A module of its own so that replay's decoding threads can load it by URL: it is the one
// piece of the correlator they run.
import type { Config } from '../schemas/types.ts'
import { createReplay, type TimeOnlyEvent } from './replay-correlations.ts'
import { readsRaw } from './revoke-confirmations.ts'

export type ReplayFilter = {
  standIn: ReturnType<typeof createReplay>['standIn']
  keepRaw: typeof readsRaw
}

export function createReplayFilter(config: Config): ReplayFilter {
  return { standIn: createReplay(config).standIn, keepRaw: readsRaw }
}

export type { TimeOnlyEvent }
