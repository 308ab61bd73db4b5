// What replay's decoding needs to know of the correlator before the events are sorted: which events it
// will only ever ignore (held as time-only stand-ins), that none keeps its raw record (nothing reads it:
// what a call revokes is core.revokes), and which fields of the others nothing after the merge reads (left
// out of the sorted runs).
// A module of its own so that replay's decoding threads can load it by URL: it is the one piece of the
// correlator they run.

import type { Config, CoreFields, NormalizedEvent } from '../schemas/types.ts'
import { createReplay, type TimeOnlyEvent } from './replay-correlations.ts'

export type ReplayFilter = {
  standIn: ReturnType<typeof createReplay>['standIn']
  keepRaw: typeof keepRaw
  leaveOutUnread: typeof leaveOutUnread
}

export function createReplayFilter(config: Config): ReplayFilter {
  return { standIn: createReplay(config).standIn, keepRaw, leaveOutUnread }
}

/** No event keeps its raw record: the correlator reads none (ingest read what a revoke revokes). */
export const keepRaw = (_event: Omit<NormalizedEvent, 'agent'>): boolean => false

/**
 * Drops, in place, the fields of an event that nothing after replay's merge reads: the correlator
 * (matching, windows, details, baseline, revoke marks), identity resolution and the revoke tally read none
 * of them, and replay writes only correlations (a late event is counted, not written). They are a
 * CloudTrail call's error message (up to a KiB of encoded authorization failure), user agent, event
 * source, name and type (the action says them), principal type and resource list, a Falco alert's output
 * fields and what was taken from them (its output, which correlations carry, stays), and every event's
 * time as received, receipt time (replay's is 0, no arrival: the correlator reads a missing one
 * alike and moves stream time by event time) and door: more than half of an event's JSON, which is written to the
 * sorted runs and parsed back. The event handed on after the merge lacks them, whatever its type says:
 * a correlator that comes to read one of them must keep it here.
 */
export function leaveOutUnread(event: Omit<NormalizedEvent, 'agent'>): void {
  const slim = event as Partial<Omit<NormalizedEvent, 'agent'>>
  slim.time_original = undefined
  slim.received_at = undefined
  slim.via = undefined
  const { core, edge } = event
  if (core) {
    const c = core as Partial<CoreFields>
    c.error_message = undefined
    c.user_agent = undefined
    c.event_source = undefined
    c.event_name = undefined
    c.event_type = undefined
    c.principal_type = undefined
    c.resources = undefined
  }
  if (edge) {
    edge.output_fields = {}
    edge.process = undefined
    edge.network = undefined
    edge.file = undefined
    edge.user = undefined
  }
}

export type { TimeOnlyEvent }
