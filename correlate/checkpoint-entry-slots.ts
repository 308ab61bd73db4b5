// A correlator's buffered entries as its checkpoint holds them (correlator-state.ts), and back: rules by
// id (a rule removed from the config drops its entries), who and detail shared again as they come back.
import type { AgentWindows } from './agent-windows.ts'
import type { SerializedEntry } from './correlator-state.ts'
import type { AgentWho, CoreDetail, EdgeDetail } from './entry-slots.ts'
import type { DetailInterner } from './event-details.ts'
import type { CompiledRule } from './match-rules.ts'

/** The entry at `slot`, serialized. */
export const serializeEntry = (
  windows: AgentWindows,
  rules: readonly CompiledRule[],
  slot: number,
): SerializedEntry => {
  const s = windows.slots
  const mask = s.mask[slot] as number
  const detail = s.details[slot] as EdgeDetail | CoreDetail
  const who = s.whos[slot] as AgentWho
  const serialized: SerializedEntry = {
    side: detail.side,
    agent: who.window.key,
    id: s.id(slot),
    time: s.time[slot] as number,
    rules: rules.filter((r) => (mask & (1 << r.index)) !== 0).map((r) => r.id),
    expiry: windows.expiry(slot),
    seq: s.seq[slot] as number,
    lag: s.lagOf(slot),
    who: { resolved_by: who.resolved_by, identity: who.identity },
    detail,
  }
  if (detail.side === 'edge') {
    serialized.output = s.output(slot)
    const repeats = s.repeats[slot] as number
    if (repeats > 0) {
      serialized.repeats = repeats
      serialized.last_time = s.last[slot] as number
    }
  }
  return serialized
}

/**
 * Buffers the entries of a checkpoint again, in their order. What does not come back (its rules are gone,
 * or a smaller cap or budget sheds it) is a removal for the next checkpoint, which would bring it back.
 */
export const restoreEntries = (
  windows: AgentWindows,
  details: DetailInterner,
  rules: readonly CompiledRule[],
  entries: readonly SerializedEntry[],
) => {
  const bitOf = new Map(rules.map((r) => [r.id, 1 << r.index]))
  for (const s of entries) {
    const mask = s.rules.reduce((m, id) => m | (bitOf.get(id) ?? 0), 0)
    if (mask === 0) {
      windows.notRestored(s.id)
      continue
    }
    const window = windows.window(s.agent)
    const slot = windows.insert(
      windows.who(window, s.who.resolved_by, s.who.identity),
      details.restore(s.detail),
      s.id,
      s.time,
      mask,
      s.expiry,
      s.seq,
      s.lag,
      s.output ?? '',
    )
    if (s.repeats !== undefined && s.last_time !== undefined)
      windows.restoreRepeats(slot, s.repeats, s.last_time)
    windows.restored(slot)
    windows.settle(slot)
  }
}
