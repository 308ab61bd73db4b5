// Whether a correlation may revoke its agent: the rule allows it, the score reaches min_score, the agent
// is not protected, its incident was not revoked within the per-agent period, and the per-agent and
// global rate limits (sliding windows over wall time) have room. Every answer names its reason in a bounded code.
// Pure apart from its own memory of earlier revokes: the time is an argument, nothing is read or sent.
// Fairness when the global limit binds: agents named only by a fallback (a workload or principal the
// watched agent can mint at will) may spend at most half of the global budget, so forged identities
// cannot leave a registered agent `rate_limited_global` (a fallback-named agent refused for want of its half
// is `rate_limited_global_fallback`, so an operator tells forged names at work from a spent budget); and a
// batch is decided registered agents first, higher scores first (decisionOrder).
// One revoke per incident holds for `rate_limit.per_agent.per` only: an incident lasts as long as the agent
// keeps making correlations within incident_gap of each other (cheap, non-revoking ones will do), and the
// credentials of a revoked role come back on their own (IRSA, instance profiles: sessions issued after
// AWSRevokeOlderSessions are not denied). Each later revoke of the incident is a round with its own key.
import { hash } from 'node:crypto'
import type { CorrelationHead } from '../bus/topics.ts'
import type { Config, Correlation, RateConfig } from '../schemas/types.ts'

export const suppressReasons = [
  'rule_not_revoking',
  'below_min_score',
  'protected_agent',
  'incident_already_revoked',
  'rate_limited_agent',
  'rate_limited_global',
  'rate_limited_global_fallback',
  'no_targets',
] as const
export type SuppressReason = (typeof suppressReasons)[number]

export type RevokeDecision =
  | {
      revoke: true
      status: 'pending' | 'dry_run'
      reason: 'policy_allowed' | 'dry_run'
      /** Revokes of this incident before this one: 0 for its first (see revokeDecisionId). */
      round: number
    }
  | { revoke: false; status: 'suppressed'; reason: SuppressReason }

export type RevokePolicyConfig = Pick<Config['revoke'], 'min_score' | 'dry_run' | 'rate_limit'> & {
  protected_agents: readonly string[]
  /** Ids of the registry (config `agents`): with any, half the global budget is kept for them. */
  registered_agents?: readonly string[]
  /** False when no webhook target is configured: a revoke would reach nobody. */
  has_targets: boolean
}

/** A revoke that went ahead (sent or dry-run): what the limits and the one-per-incident rule remember. */
export type PastRevoke = { incident_id: string; agent_id: string; time: number }

/**
 * An incident counted as revoked because it was merged with a revoked one (learnMerges): `time` of the
 * group's last revoke, `rounds` its revokes. Only the merging correlation says so, once, so the outbox
 * keeps these for a restart (and a rebuild after a failed write).
 */
export type MergedRevoke = { incident_id: string; time: number; rounds: number }

export type RevokePolicy = {
  /** Decides, and remembers an allowed revoke against the limits. */
  decide(correlation: CorrelationHead, now: number): RevokeDecision
  /**
   * Learns that the correlation's incident absorbed a revoked one (merged), which makes it revoked too. For
   * every correlation of a batch before decisionOrder reorders it: a stronger correlation of the survivor
   * decided before the merging one would otherwise revoke the same incident again. A revoke of one of
   * them also marks the others, so it is learnt again after each revoke of a batch. Returns the incidents
   * it marked anew (or with a later revoke), to keep.
   */
  learnMerges(correlation: CorrelationHead): MergedRevoke[]
  /** Revokes of the incident so far: the round its next revoke would be. */
  rounds(incidentId: string): number
}

/**
 * The idempotency key of an incident's revoke: the webhook-id and CloudEvent id, stable across retries.
 * The incident's first revoke keeps the key of earlier versions; a later round (the incident still alive
 * one per-agent period after its last revoke) is keyed by the correlation that triggers it, so receivers
 * do not drop it. Not by a round number: after a merge and a restart the outbox no longer says which
 * numbers an incident used, while a correlation is decided once, and again the same way if redelivered.
 */
export function revokeDecisionId(incidentId: string, laterRoundBy?: string): string {
  const text = laterRoundBy === undefined ? `revoke\n${incidentId}` : `revoke\n${incidentId}\n${laterRoundBy}`
  return `rvk_${hash('sha256', text, 'hex').slice(0, 32)}`
}

/**
 * The key of a suppression the outbox records (held back by a rate limit, or explained once per incident):
 * its own, never a revoke's. The outbox forgets such a decision past a horizon; were it keyed as the revoke
 * its correlation would trigger, a redelivery of that correlation past the horizon would publish that
 * revoke's outcome under the forgotten suppression's id (numbering starts again at 1).
 */
export function suppressionDecisionId(incidentId: string, correlationId: string): string {
  return `rvk_${hash('sha256', `suppressed\n${incidentId}\n${correlationId}`, 'hex').slice(0, 32)}`
}

const trustedResolution = new Set(['registry', 'host', 'stitched'])

/** Named by the registry (not by a fallback the agent itself could choose). */
const isRegistered = (
  registered: ReadonlySet<string>,
  agent: Pick<Correlation['agent'], 'id' | 'resolved_by'>,
) => registered.has(agent.id) && trustedResolution.has(agent.resolved_by)

/**
 * The order a batch is decided in: registered agents first, then higher scores; stable otherwise.
 * `registered`: the registry's agent ids, made a set once by the caller (a registry of 1,000 agents made
 * into a set per batch, and two look-ups per comparison, cost the main thread more than the decisions).
 */
export function decisionOrder<C extends Pick<CorrelationHead, 'agent' | 'score'>>(
  correlations: readonly C[],
  registered: ReadonlySet<string> = new Set(),
): C[] {
  const ranked = correlations.map((c) => ({ c, rank: isRegistered(registered, c.agent) ? 1 : 0 }))
  ranked.sort((a, b) => b.rank - a.rank || b.c.score - a.c.score)
  return ranked.map((r) => r.c)
}

/**
 * Decides a batch the way `nerve run`'s dispatcher does: every merge the batch carries is learnt first,
 * the correlations are decided in decisionOrder, and after each revoke the merges are learnt again (a
 * revoke of one incident marks those merged with it). `decideOne` decides one correlation with the policy
 * (or skips it, a duplicate, returning undefined). Returns the marks the batch's merges taught.
 */
export function decideBatch<C extends CorrelationHead>(
  policy: RevokePolicy,
  correlations: readonly C[],
  registered: ReadonlySet<string>,
  decideOne: (correlation: C) => RevokeDecision | undefined,
): MergedRevoke[] {
  const merging = correlations.filter((c) => c.incident.merged?.length)
  const learnt: MergedRevoke[] = []
  const learn = () => {
    for (const m of merging) for (const mark of policy.learnMerges(m)) learnt.push(mark)
  }
  learn()
  for (const c of decisionOrder(correlations, registered)) {
    if (decideOne(c)?.revoke) learn()
  }
  return learnt
}

export function createRevokePolicy(
  config: RevokePolicyConfig,
  history: readonly PastRevoke[],
  merged: readonly MergedRevoke[] = [],
): RevokePolicy {
  const protectedAgents = new Set(config.protected_agents)
  const registered = new Set(config.registered_agents ?? [])
  /** Revoked incidents: when last, and how many times. */
  const revokedIncidents = new Map<string, { time: number; rounds: number }>()
  const incidentPeriod = config.rate_limit.per_agent.per
  const global = createSlidingWindow(config.rate_limit.global)
  // With a registry, the fallback-named agents share at most this much of the global budget.
  const fallbackCount =
    registered.size > 0
      ? Math.max(config.rate_limit.global.count - Math.floor(config.rate_limit.global.count / 2), 1)
      : config.rate_limit.global.count
  const fallback = createSlidingWindow({ count: fallbackCount, per: config.rate_limit.global.per })
  const perAgent = new Map<string, ReturnType<typeof createSlidingWindow>>()
  const agentWindow = (agentId: string) => {
    let window = perAgent.get(agentId)
    if (!window) {
      window = createSlidingWindow(config.rate_limit.per_agent)
      perAgent.set(agentId, window)
    }
    return window
  }
  const remember = (past: PastRevoke, isFallback: boolean) => {
    const known = revokedIncidents.get(past.incident_id)
    revokedIncidents.set(past.incident_id, {
      time: Math.max(known?.time ?? past.time, past.time),
      rounds: (known?.rounds ?? 0) + 1,
    })
    global.add(past.time)
    if (isFallback) fallback.add(past.time)
    agentWindow(past.agent_id).add(past.time)
  }
  for (const past of [...history].sort((a, b) => a.time - b.time))
    remember(past, registered.size > 0 && !registered.has(past.agent_id))
  // Marks learnt from merges: they count for the one-per-incident rule only (the limits count revokes).
  for (const mark of merged) {
    const known = revokedIncidents.get(mark.incident_id)
    revokedIncidents.set(mark.incident_id, {
      time: Math.max(known?.time ?? mark.time, mark.time),
      rounds: Math.max(known?.rounds ?? 0, mark.rounds),
    })
  }

  const suppressed = (reason: SuppressReason): RevokeDecision => ({
    revoke: false,
    status: 'suppressed',
    reason,
  })

  // An incident and those it absorbed (merged, group-incidents.ts) are one: one revoked, all are.
  const learnMerges = (correlation: CorrelationHead): MergedRevoke[] => {
    const merged = correlation.incident.merged
    if (!merged?.length) return []
    const ids = [correlation.incident.id, ...merged]
    let time = -Infinity
    let rounds = 0
    for (const id of ids) {
      const known = revokedIncidents.get(id)
      if (!known) continue
      time = Math.max(time, known.time)
      rounds = Math.max(rounds, known.rounds)
    }
    if (rounds === 0) return []
    const marked: MergedRevoke[] = []
    for (const id of ids) {
      const known = revokedIncidents.get(id)
      if (known?.time === time && known.rounds === rounds) continue
      revokedIncidents.set(id, { time, rounds })
      marked.push({ incident_id: id, time, rounds })
    }
    return marked
  }

  return {
    learnMerges,
    rounds: (incidentId) => revokedIncidents.get(incidentId)?.rounds ?? 0,
    decide(correlation, now) {
      if (!correlation.rule.revoke) return suppressed('rule_not_revoking')
      if (correlation.score < config.min_score) return suppressed('below_min_score')
      // Protected only when the registry named it: a fallback name (minted by the watched agent) that
      // equals a protected id protects nothing, as it spends no registered budget.
      if (protectedAgents.has(correlation.agent.id) && trustedResolution.has(correlation.agent.resolved_by))
        return suppressed('protected_agent')
      learnMerges(correlation)
      const revoked = revokedIncidents.get(correlation.incident.id)
      if (revoked && now - revoked.time < incidentPeriod) return suppressed('incident_already_revoked')
      if (!config.dry_run && !config.has_targets) return suppressed('no_targets')
      if (perAgent.get(correlation.agent.id)?.hasRoom(now) === false) return suppressed('rate_limited_agent')
      if (!global.hasRoom(now)) return suppressed('rate_limited_global')
      const isFallback = registered.size > 0 && !isRegistered(registered, correlation.agent)
      if (isFallback && !fallback.hasRoom(now)) return suppressed('rate_limited_global_fallback')
      // Agents idle for longer than the per-agent period are forgotten: the map stays bounded.
      for (const [agentId, window] of perAgent) if (window.isEmpty(now)) perAgent.delete(agentId)
      remember(
        { incident_id: correlation.incident.id, agent_id: correlation.agent.id, time: now },
        isFallback,
      )
      const round = revoked?.rounds ?? 0
      return config.dry_run
        ? { revoke: true, status: 'dry_run', reason: 'dry_run', round }
        : { revoke: true, status: 'pending', reason: 'policy_allowed', round }
    },
  }
}

/** At most `count` events in any period of `per` ms ending now (a sliding log: exact, `count` entries). */
function createSlidingWindow(rate: RateConfig) {
  const times: number[] = []
  const expire = (now: number) => {
    while (times.length > 0 && (times[0] as number) <= now - rate.per) times.shift()
  }
  return {
    hasRoom(now: number) {
      expire(now)
      return times.length < rate.count
    },
    isEmpty(now: number) {
      expire(now)
      return times.length === 0
    },
    add(time: number) {
      times.push(time)
    },
  }
}
