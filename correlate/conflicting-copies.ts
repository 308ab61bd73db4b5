// Whether a later copy of an event id differs from the first in what matters (DESIGN.md "Dedup": the
// first delivery of an id wins). CloudTrail's own redeliveries are byte-for-byte copies; a copy that
// differs in its time, action, principal, access key, error code, the resource its request named or the
// agent it resolves to was written by someone else (a forged log file, a forged topic record), and may
// have pre-empted the real record. First-wins stays; such a copy is counted apart and named in a warning.
//
// Nothing is kept for it beside the seen id: the correlator compares the copy with what it already holds
// for the buffered call (its time, its interned detail, its agent and identity: 0 bytes more per id), and
// replay with the first event itself, which it holds while it remembers the id. The request's parameters
// are compared through the one resource they name (`core.target`, read once at ingest): a copy that
// changes another parameter only (a policy ARN for the same role) is not told apart.
import type { NormalizedEvent } from '../schemas/types.ts'
import type { AgentWho, CoreDetail, EdgeDetail } from './entry-slots.ts'

/** What replay holds of an event no rule can use: its id, time and why it is ignored. */
type StandIn = { id: string; time: number; time_ns: number; ignored: string }

/** Whether `copy` differs from the buffered call `detail` (of `who`, at `time`) in what matters. */
export function conflictsWithBuffered(
  copy: NormalizedEvent,
  time: number,
  detail: EdgeDetail | CoreDetail | null,
  who: AgentWho | null,
): boolean {
  const core = copy.core
  if (core === undefined || detail?.side !== 'core') return copy.side === 'core' || detail?.side === 'core'
  return (
    time !== copy.time ||
    detail.action !== core.action ||
    detail.principal !== (core.principal_arn ?? core.session_issuer_arn ?? '') ||
    detail.error_code !== core.error_code ||
    detail.target !== core.target ||
    who?.identity.access_key_id !== copy.identity.access_key_id ||
    who?.window.key !== copy.agent.id
  )
}

/** Whether two events of one id (either a time-only stand-in) differ in what matters. */
export function conflictingCopies(
  first: NormalizedEvent | StandIn,
  copy: NormalizedEvent | StandIn,
): boolean {
  if (first.time !== copy.time || first.time_ns !== copy.time_ns) return true
  const a = first as Partial<NormalizedEvent & StandIn>
  const b = copy as Partial<NormalizedEvent & StandIn>
  // A stand-in against an event, or two stand-ins ignored for different reasons: one of them could be
  // used and the other not. Two stand-ins ignored alike cannot be told apart (they hold nothing more).
  if (a.ignored !== undefined || b.ignored !== undefined) return a.ignored !== b.ignored
  if (a.side !== b.side) return true
  const x = a.core
  const y = b.core
  if (x === undefined || y === undefined) return x !== y
  return (
    x.action !== y.action ||
    (x.principal_arn ?? x.session_issuer_arn) !== (y.principal_arn ?? y.session_issuer_arn) ||
    x.access_key_id !== y.access_key_id ||
    x.error_code !== y.error_code ||
    x.target !== y.target ||
    a.agent?.id !== b.agent?.id
  )
}
