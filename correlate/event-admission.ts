// Which rules an event may join (K1, internal events, no feedback loop), decided before it touches a
// window: usableMask() for accept(), which also records the revokes it sees (a revoke is never correlated),
// and alwaysIgnored(), its state-free half, for replay's time-only stand-ins. The two agree: an event
// alwaysIgnored() names gets the same reason from usableMask(), whatever the state.
import type { CoreFields, NormalizedEvent } from '../schemas/types.ts'
import type { IgnoredReason } from './correlator-types.ts'
import type { RuleMatcher } from './match-rules.ts'
import { mayConfirm, type RevokeTracker } from './revoke-confirmations.ts'

export type EventAdmission = {
  /** The rules that could use the event (a mask, 0 for none), or why none may. Notes revokes. */
  usableMask(event: NormalizedEvent): number | IgnoredReason
  /** Why the event is ignored whatever the state, or undefined when it may matter. */
  alwaysIgnored(event: Omit<NormalizedEvent, 'agent'>): IgnoredReason | undefined
}

export function createEventAdmission(matcher: RuleMatcher, revokes: RevokeTracker): EventAdmission {
  const usableMask = (event: NormalizedEvent): number | IgnoredReason => {
    if (event.side === 'edge') {
      if (!event.edge || event.edge.internal) return 'internal'
      return matcher.edgeMask(event.edge)
    }
    const core = event.core as CoreFields
    if (revokes.isSelf(core)) {
      revokes.noteRevoke(event, true)
      return 'self_action'
    }
    if (revokes.noteRevoke(event)) return 'revoke_action'
    return matcher.coreMask(core)
  }

  const alwaysIgnored = (event: Omit<NormalizedEvent, 'agent'>): IgnoredReason | undefined => {
    if (!Number.isFinite(event.time)) return undefined
    if (event.side === 'edge') {
      if (!event.edge || event.edge.internal) return 'internal'
      return matcher.edgeMask(event.edge) === 0 ? 'no_rule' : undefined
    }
    const core = event.core as CoreFields
    // Revokes set revoke marks; denied calls may confirm one: both depend on the state.
    if (core.revokes !== undefined || mayConfirm(core)) return undefined
    if (revokes.isSelf(core)) return 'self_action'
    return matcher.coreMask(core) === 0 ? 'no_rule' : undefined
  }

  return { usableMask, alwaysIgnored }
}
