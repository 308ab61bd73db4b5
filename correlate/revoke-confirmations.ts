// No feedback loop between automated defenders (core.md §5.3). CloudTrail records made by nerve's own
// revoker (`revoke.self_identities`, as principal or as session issuer, or tagged `by_nerve` by ingest) are
// never correlated, and neither is a revoke recognised by what it does: an `iam:PutRolePolicy` whose
// document is exactly the deny-older-sessions policy (one statement: Deny every action on every resource
// for tokens issued before a time not earlier than the call). The policy name proves nothing (the watched
// agent names its policies), so an `AWSRevokeOlderSessions` carrying anything else is an ordinary, and
// likely hostile, core event. Key deactivation and deletion are revokes only when nerve's revoker makes
// them; by anyone else they are ordinary events (impact, T1531, in the built-in pack).
// What a call revokes is read from its request once, at ingest (ingest/revoke-request.ts: core.revokes).
// A revoke seen in the stream marks its role or key "just revoked" for `window` ms of event time: a denied
// call by that role's sessions or that key inside it is a confirmation, not a threat. A role's revoke denies
// the sessions issued before its policy's time: a denied call of a session issued at or after it (the role's
// credentials come back by themselves: IRSA, instance profiles) was denied for something else, and counts.
import type { CoreFields, NormalizedEvent } from '../schemas/types.ts'

/** A role is named within its account: the same role name in another account is another role. */
export type RevokeTarget = { kind: 'role' | 'access_key'; name: string; account?: string }

export type RevokeRecord = RevokeTarget & {
  time: number
  event_id: string
  /** A role's revoke: the sessions it denies are those issued before this (aws:TokenIssueTime), epoch ms. */
  issued_before?: number
}

export type RevokeConfirmation = {
  event_id: string
  agent_id: string
  action: string
  error_code: string
  revoke_event_id: string
  target: RevokeTarget
  /** Event time of the denied call minus event time of the revoke, ms. */
  after_ms: number
}

export type RevokeTracker = {
  isSelf(core: CoreFields): boolean
  /** Records a revoke (see revokeTargetOf); returns false when the event is no revoke. */
  noteRevoke(event: NormalizedEvent, bySelf?: boolean): boolean
  confirmation(event: NormalizedEvent): RevokeConfirmation | null
  forgetBefore(horizon: number): void
  size(): number
  snapshot(): RevokeRecord[]
  /** Grows whenever the marks change, so a checkpoint rewrites them only then. */
  revision(): number
}

const confirmingErrors = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'Client.UnauthorizedOperation',
  'InvalidClientTokenId',
  'ExpiredToken',
  'ExpiredTokenException',
])

/** Whether a denied call may confirm a revoke (depending on the revoke marks of the moment). */
export const mayConfirm = (core: CoreFields): core is CoreFields & { error_code: string } =>
  core.error_code !== undefined && confirmingErrors.has(core.error_code)

/**
 * What a successful revoke-shaped call revokes, as ingest read it from the request (core.revokes).
 * `bySelf`: the call was made by nerve's revoker, whose key deactivations count; anyone else's only count
 * for the exact deny-older-sessions policy. An event an earlier nerve published has no core.revokes and
 * revokes nothing here: its request is never parsed in the correlator.
 */
export function revokeTargetOf(
  event: NormalizedEvent,
  bySelf = false,
): (RevokeTarget & { issued_before?: number }) | null {
  const revokes = event.core?.revokes
  if (revokes === undefined) return null
  if (revokes.kind === 'role') {
    // IAM is per account: the role revoked is in the account the call was made in.
    const account = event.core?.account_id
    const role = { kind: 'role' as const, name: revokes.name, issued_before: revokes.issued_before }
    return account ? { ...role, account } : role
  }
  return bySelf ? { kind: 'access_key', name: revokes.name } : null
}

/** `arn:aws:iam::123:role/path/name` → `name` (revokes name the role, not its ARN). */
const roleNameOf = (arn: string | undefined): string | undefined =>
  arn?.includes(':role/') ? arn.slice(arn.lastIndexOf('/') + 1) : undefined

/** `arn:aws:iam::123:role/path/name` → `123`. */
const accountOf = (arn: string | undefined): string | undefined => arn?.split(':')[4] || undefined

/**
 * The revoke keys of the role a `revoke.self_identities` ARN runs as: `arn:aws:iam::123:role/path/name` or
 * `arn:aws:sts::123:assumed-role/name/session` → `role:123:name` (and `role:name`, for a call whose
 * account is unknown).
 */
function selfRoleKeys(arn: string): string[] {
  const assumed = /^arn:[^:]+:sts::(\d*):assumed-role\/([^/]+)\//.exec(arn)
  const name = assumed ? assumed[2] : roleNameOf(arn)
  const account = assumed ? assumed[1] : accountOf(arn)
  if (!name) return []
  return [keyOf({ kind: 'role', name }), ...(account ? [keyOf({ kind: 'role', name, account })] : [])]
}

/** Whether the call's session was issued at or after what the role's revoke denies: the revoke spared it. */
const issuedSince = (created: number | undefined, record: RevokeRecord) =>
  created !== undefined && record.issued_before !== undefined && created >= record.issued_before

/** IAM does not tell role names apart by case (`Nerve-Revoker` is `nerve-revoker`): neither do the keys. */
const keyOf = (t: RevokeTarget) => {
  if (t.kind !== 'role') return `${t.kind}:${t.name}`
  const name = t.name.toLowerCase()
  return t.account !== undefined ? `role:${t.account}:${name}` : `role:${name}`
}

export function createRevokeTracker(
  selfIdentities: readonly string[],
  window: number,
  restored: readonly RevokeRecord[] = [],
): RevokeTracker {
  // A few ARNs: comparing directly is cheaper than hashing each event's fresh ARN strings for a Set.
  const self = [...selfIdentities]
  const isSelfArn = (arn: string | undefined) => {
    if (arn === undefined) return false
    for (const s of self) if (s === arn) return true
    return false
  }
  // The roles nerve's revoker runs as: revoking their sessions is an attack on the defender, never a revoke.
  const selfRoles = new Set(self.flatMap((arn) => selfRoleKeys(arn)))
  const revoked = new Map<string, RevokeRecord>(restored.map((r) => [keyOf(r), { ...r }]))
  let revision = 0

  const isSelf = (core: CoreFields) =>
    core.by_nerve || isSelfArn(core.principal_arn) || isSelfArn(core.session_issuer_arn)

  const noteRevoke = (event: NormalizedEvent, bySelf = false) => {
    const target = revokeTargetOf(event, bySelf)
    if (!target || (!bySelf && selfRoles.has(keyOf(target)))) return false
    const existing = revoked.get(keyOf(target))
    if (!existing || existing.time < event.time) {
      revoked.set(keyOf(target), { ...target, time: event.time, event_id: event.id })
      revision++
    }
    return true
  }

  const confirmation = (event: NormalizedEvent): RevokeConfirmation | null => {
    const core = event.core
    if (!core || !mayConfirm(core) || revoked.size === 0) return null
    const candidates: RevokeTarget[] = []
    const role = roleNameOf(core.session_issuer_arn)
    const account = accountOf(core.session_issuer_arn)
    if (role) candidates.push(account ? { kind: 'role', name: role, account } : { kind: 'role', name: role })
    if (core.access_key_id) candidates.push({ kind: 'access_key', name: core.access_key_id })
    for (const target of candidates) {
      const record = revoked.get(keyOf(target))
      if (!record || event.time < record.time || event.time > record.time + window) continue
      if (issuedSince(core.session_created, record)) continue
      return {
        event_id: event.id,
        agent_id: event.agent.id,
        action: core.action,
        error_code: core.error_code,
        revoke_event_id: record.event_id,
        target,
        after_ms: event.time - record.time,
      }
    }
    return null
  }

  const forgetBefore = (horizon: number) => {
    for (const [key, r] of revoked) {
      if (r.time + window >= horizon) continue
      revoked.delete(key)
      revision++
    }
  }

  return {
    isSelf,
    noteRevoke,
    confirmation,
    forgetBefore,
    size: () => revoked.size,
    snapshot: () => [...revoked.values()].map((r) => ({ ...r })),
    revision: () => revision,
  }
}
