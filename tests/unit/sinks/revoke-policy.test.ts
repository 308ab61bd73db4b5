import { describe, expect, it } from 'vitest'
import { createIncidentGrouper } from '../../../correlate/group-incidents.ts'
import type { Correlation } from '../../../schemas/types.ts'
import {
  createRevokePolicy,
  decisionOrder,
  type RevokePolicyConfig,
  revokeDecisionId,
  type SuppressReason,
} from '../../../sinks/revoke-policy.ts'
import { makeCorrelation } from './correlation-fixture.ts'

const hour = 3_600_000
const t0 = Date.UTC(2026, 10, 25, 17, 0, 0)

const config = (overrides: Partial<RevokePolicyConfig> = {}): RevokePolicyConfig => ({
  min_score: 70,
  dry_run: false,
  rate_limit: { per_agent: { count: 1, per: hour }, global: { count: 20, per: hour } },
  protected_agents: ['payments-bot'],
  has_targets: true,
  ...overrides,
})

const agent = (id: string) => ({ id, resolved_by: 'registry' as const, identity: {} })

describe('revoke policy', () => {
  it('allows a revoking rule, a score at the threshold, an unprotected agent', () => {
    const policy = createRevokePolicy(config(), [])
    expect(policy.decide(makeCorrelation(0, { score: 70 }), t0)).toEqual({
      revoke: true,
      status: 'pending',
      reason: 'policy_allowed',
      round: 0,
    })
  })

  it.each<[string, Parameters<typeof makeCorrelation>[1], SuppressReason]>([
    ['a rule without revoke', { rule: { id: 'r', severity: 90, revoke: false } }, 'rule_not_revoking'],
    ['a score one below min_score', { score: 69 }, 'below_min_score'],
    ['a protected agent', { agent: agent('payments-bot') }, 'protected_agent'],
  ])('suppresses %s', (_what, overrides, reason) => {
    const policy = createRevokePolicy(config(), [])
    expect(policy.decide(makeCorrelation(0, overrides), t0)).toEqual({
      revoke: false,
      status: 'suppressed',
      reason,
    })
  })

  it('revokes an incident once (within the per-agent period)', () => {
    const policy = createRevokePolicy(config({ rate_limit: big() }), [])
    const incident = { id: 'inc-1' }
    expect(policy.decide(makeCorrelation(0, { incident }), t0).revoke).toBe(true)
    expect(policy.decide(makeCorrelation(1, { incident }), t0 + 1)).toMatchObject({
      reason: 'incident_already_revoked',
    })
    expect(policy.decide(makeCorrelation(2), t0 + 2).revoke).toBe(true)
  })

  it('revokes an incident the agent keeps alive again once the per-agent period has passed since its revoke', () => {
    // Single linkage: one correlation of any rule within incident_gap (30m) of the last keeps the incident
    // open, for as long as the agent likes. One revoke per incident for ever would let an agent whose
    // credentials come back (IRSA, an instance profile: fresh sessions are not denied by
    // AWSRevokeOlderSessions) escalate again and again, silently suppressed as incident_already_revoked.
    const policy = createRevokePolicy(config(), [])
    const incident = { id: 'inc-kept-alive' }
    expect(policy.decide(makeCorrelation(0, { incident }), t0)).toMatchObject({ revoke: true, round: 0 })
    expect(policy.decide(makeCorrelation(1, { incident }), t0 + hour - 1)).toMatchObject({
      reason: 'incident_already_revoked',
    })
    expect(policy.decide(makeCorrelation(2, { incident }), t0 + hour)).toMatchObject({
      revoke: true,
      round: 1,
    })
    expect(policy.decide(makeCorrelation(3, { incident }), t0 + hour + 1)).toMatchObject({
      reason: 'incident_already_revoked',
    })
    // Restarted with that history, it counts the rounds the same way.
    const history = [
      { incident_id: 'inc-kept-alive', agent_id: 'data-cleaner', time: t0 },
      { incident_id: 'inc-kept-alive', agent_id: 'data-cleaner', time: t0 + hour },
    ]
    const restarted = createRevokePolicy(config(), history)
    expect(restarted.decide(makeCorrelation(4, { incident }), t0 + 2 * hour - 1)).toMatchObject({
      reason: 'incident_already_revoked',
    })
    expect(restarted.decide(makeCorrelation(5, { incident }), t0 + 2 * hour)).toMatchObject({
      revoke: true,
      round: 2,
    })
  })

  it('with the real incident grouping: a correlation every 20 minutes keeps one incident, revoked each hour', () => {
    const grouper = createIncidentGrouper(30 * 60_000)
    const policy = createRevokePolicy(config(), [])
    const decided: string[] = []
    for (let i = 0; i <= 9; i++) {
      const time = t0 + i * 20 * 60_000
      const c = makeCorrelation(i)
      const incident = grouper.assign(c.agent.id, time, c.id, ['core:iam:AttachRolePolicy'])
      const correlation: Correlation = { ...c, time, incident: { id: incident.id } }
      const d = policy.decide(correlation, time)
      decided.push(d.revoke ? `revoke@${i * 20}m` : d.reason)
    }
    expect(grouper.size()).toBe(1)
    expect(decided.filter((d) => d.startsWith('revoke@'))).toEqual([
      'revoke@0m',
      'revoke@60m',
      'revoke@120m',
      'revoke@180m',
    ])
  })

  it('carries the revoke time and round of a merged incident over to the survivor', () => {
    const policy = createRevokePolicy(config({ rate_limit: big() }), [])
    expect(policy.decide(makeCorrelation(0, { incident: { id: 'inc-1' } }), t0)).toMatchObject({ round: 0 })
    const merging = makeCorrelation(1, { incident: { id: 'inc-0', merged: ['inc-1'] } })
    expect(policy.decide(merging, t0 + hour - 1)).toMatchObject({ reason: 'incident_already_revoked' })
    expect(policy.decide(makeCorrelation(2, { incident: { id: 'inc-0' } }), t0 + hour)).toMatchObject({
      revoke: true,
      round: 1,
    })
  })

  it('counts an incident that absorbed a revoked one as revoked, for its later correlations too', () => {
    const policy = createRevokePolicy(config({ rate_limit: big() }), [])
    expect(policy.decide(makeCorrelation(0, { incident: { id: 'inc-1' } }), t0).revoke).toBe(true)
    const merging = makeCorrelation(1, { incident: { id: 'inc-0', merged: ['inc-1'] } })
    expect(policy.decide(merging, t0 + 1)).toMatchObject({ reason: 'incident_already_revoked' })
    expect(policy.decide(makeCorrelation(2, { incident: { id: 'inc-0' } }), t0 + 2)).toMatchObject({
      reason: 'incident_already_revoked',
    })
  })

  it('limits per agent over a sliding window: room again exactly one period after the oldest', () => {
    const policy = createRevokePolicy(
      config({ rate_limit: { ...big(), per_agent: { count: 2, per: hour } } }),
      [],
    )
    expect(policy.decide(makeCorrelation(0), t0).revoke).toBe(true)
    expect(policy.decide(makeCorrelation(1), t0 + 10).revoke).toBe(true)
    expect(policy.decide(makeCorrelation(2), t0 + 20)).toMatchObject({ reason: 'rate_limited_agent' })
    expect(policy.decide(makeCorrelation(3), t0 + hour - 1)).toMatchObject({ reason: 'rate_limited_agent' })
    expect(policy.decide(makeCorrelation(4), t0 + hour).revoke).toBe(true)
    expect(policy.decide(makeCorrelation(5), t0 + hour + 1)).toMatchObject({ reason: 'rate_limited_agent' })
    // Another agent is not affected.
    expect(policy.decide(makeCorrelation(6, { agent: agent('other') }), t0 + hour + 2).revoke).toBe(true)
  })

  it('under a flood of 1,000 correlations from 50 agents, allows exactly what the limits allow', () => {
    const policy = createRevokePolicy(
      config({ rate_limit: { per_agent: { count: 1, per: hour }, global: { count: 40, per: hour } } }),
      [],
    )
    const reasons = new Map<string, number>()
    for (let i = 0; i < 1000; i++) {
      const c = makeCorrelation(i, { agent: agent(`agent-${i % 50}`) })
      const { reason } = policy.decide(c, t0 + i)
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
    }
    // Agents 0–39 get one revoke each, then only their own limit; agents 40–49 find the global budget spent.
    expect(Object.fromEntries(reasons)).toEqual({
      policy_allowed: 40,
      rate_limited_agent: 40 * 19,
      rate_limited_global: 10 * 20,
    })
  })

  it('dry-run decides exactly as a live run, and counts against the limits', () => {
    const policy = createRevokePolicy(config({ dry_run: true, has_targets: false }), [])
    expect(policy.decide(makeCorrelation(0), t0)).toEqual({
      revoke: true,
      status: 'dry_run',
      reason: 'dry_run',
      round: 0,
    })
    expect(policy.decide(makeCorrelation(1), t0)).toMatchObject({ reason: 'rate_limited_agent' })
    expect(policy.decide(makeCorrelation(2, { score: 10 }), t0)).toMatchObject({ reason: 'below_min_score' })
  })

  it('protects only an agent the registry named: a fallback name equal to a protected id is not protected', () => {
    // The watched agent mints fallback names (pods, roles, sessions); an operator whose registry ids look
    // like them (`agents/payments-bot`, a role ARN) must not have them turn its revoke off.
    const policy = createRevokePolicy(config({ protected_agents: ['agents/payments-bot'] }), [])
    const minted = { id: 'agents/payments-bot', resolved_by: 'workload' as const, identity: {} }
    expect(policy.decide(makeCorrelation(0, { agent: minted }), t0).revoke).toBe(true)
    const named = { ...minted, resolved_by: 'registry' as const }
    expect(policy.decide(makeCorrelation(1, { agent: named }), t0)).toMatchObject({
      reason: 'protected_agent',
    })
  })

  it('says no_targets rather than pretending to send when no webhook is configured', () => {
    const policy = createRevokePolicy(config({ has_targets: false }), [])
    expect(policy.decide(makeCorrelation(0), t0)).toMatchObject({ revoke: false, reason: 'no_targets' })
  })

  it('after a restart, remembers revoked incidents and the revokes still inside the windows', () => {
    const history = [
      { incident_id: 'inc-data-cleaner-0', agent_id: 'data-cleaner', time: t0 - 10 },
      { incident_id: 'inc-old', agent_id: 'other', time: t0 - 2 * hour },
    ]
    const policy = createRevokePolicy(config(), history)
    expect(policy.decide(makeCorrelation(0), t0)).toMatchObject({ reason: 'incident_already_revoked' })
    expect(policy.decide(makeCorrelation(1), t0)).toMatchObject({ reason: 'rate_limited_agent' })
    expect(policy.decide(makeCorrelation(2, { agent: agent('other') }), t0).revoke).toBe(true)
  })
})

describe('revokeDecisionId', () => {
  it('is one stable key per incident, usable as a webhook-id (no dots)', () => {
    expect(revokeDecisionId('inc-1')).toBe(revokeDecisionId('inc-1'))
    expect(revokeDecisionId('inc-1')).not.toBe(revokeDecisionId('inc-2'))
    expect(revokeDecisionId('inc-1')).toMatch(/^rvk_[0-9a-f]{32}$/)
    // A later round of the same incident is another revoke: receivers must not drop it as a duplicate.
    expect(revokeDecisionId('inc-1', 'c1')).not.toBe(revokeDecisionId('inc-1'))
    expect(revokeDecisionId('inc-1', 'c1')).not.toBe(revokeDecisionId('inc-1', 'c2'))
    expect(revokeDecisionId('inc-1', 'c1')).toMatch(/^rvk_[0-9a-f]{32}$/)
  })
})

function big() {
  return { per_agent: { count: 1000, per: hour }, global: { count: 1000, per: hour } }
}

// The attack: the watched agent mints workloads (or role sessions) that nerve names by fallback, triggers
// a correlation for each, and spends the global revoke budget, so the real agent's revoke is refused.
describe('revoke budget fairness', () => {
  const forged = (i: number) =>
    makeCorrelation(100 + i, {
      score: 95,
      agent: { id: `agents/forged-${i}`, resolved_by: 'workload', identity: {} },
      incident: { id: `${String(i).padStart(2, '0')}${'f'.repeat(62)}` },
    })
  const real = makeCorrelation(1, { score: 80, incident: { id: 'a'.repeat(64) } })
  const tight = config({
    rate_limit: { per_agent: { count: 1, per: hour }, global: { count: 4, per: hour } },
    registered_agents: ['data-cleaner'],
  })

  it('keeps half of the global budget for registered agents: forged identities cannot starve them', () => {
    const policy = createRevokePolicy(tight, [])
    const forgedReasons = Array.from({ length: 10 }, (_, i) => policy.decide(forged(i), t0 + i).reason)
    expect(forgedReasons.filter((r) => r === 'policy_allowed')).toHaveLength(2)
    expect(forgedReasons.filter((r) => r === 'rate_limited_global_fallback')).toHaveLength(8)
    expect(policy.decide(real, t0 + 20)).toMatchObject({ revoke: true, reason: 'policy_allowed' })
  })

  it('tells a spent fallback half (rate_limited_global_fallback) from a spent global budget (rate_limited_global)', () => {
    const policy = createRevokePolicy(
      { ...tight, registered_agents: ['registered-0', 'registered-1', 'registered-2'] },
      [],
    )
    // Two forged names spend the fallback half; the third is refused for want of that half, not of the
    // global budget, which still has two revokes for registered agents.
    const reasons = [0, 1, 2].map((i) => policy.decide(forged(i), t0 + i).reason)
    expect(reasons).toEqual(['policy_allowed', 'policy_allowed', 'rate_limited_global_fallback'])
    const registered = (i: number) =>
      makeCorrelation(300 + i, { agent: agent(`registered-${i}`), incident: { id: `inc-r${i}` } })
    expect([0, 1, 2].map((i) => policy.decide(registered(i), t0 + 10 + i).reason)).toEqual([
      'policy_allowed',
      'policy_allowed',
      'rate_limited_global',
    ])
    // Once the whole budget is spent, a forged name is refused for that, the reason every agent shares.
    expect(policy.decide(forged(3), t0 + 20).reason).toBe('rate_limited_global')
  })

  it('a fallback name equal to a registry id does not pass for registered', () => {
    const policy = createRevokePolicy(tight, [])
    const spoof = (i: number) =>
      makeCorrelation(200 + i, {
        score: 95,
        agent: { id: 'data-cleaner', resolved_by: 'workload', identity: {} },
        incident: { id: `${String(i).padStart(2, '0')}${'e'.repeat(62)}` },
      })
    const allowed = [0, 1, 2].map((i) => policy.decide(spoof(i), t0 + i * 2 * hour).reason)
    expect(allowed).toEqual(['policy_allowed', 'policy_allowed', 'policy_allowed'])
    const burst = createRevokePolicy(
      { ...tight, rate_limit: { ...tight.rate_limit, per_agent: { count: 9, per: hour } } },
      [],
    )
    const reasons = [0, 1, 2, 3].map((i) => burst.decide(spoof(i), t0 + i).reason)
    expect(reasons).toEqual([
      'policy_allowed',
      'policy_allowed',
      'rate_limited_global_fallback',
      'rate_limited_global_fallback',
    ])
  })

  it('decides a batch registered agents first, then by score', () => {
    const batch = [forged(0), makeCorrelation(2, { score: 71 }), forged(1), real]
    expect(decisionOrder(batch, new Set(['data-cleaner'])).map((c) => [c.agent.id, c.score])).toEqual([
      ['data-cleaner', 80],
      ['data-cleaner', 71],
      ['agents/forged-0', 95],
      ['agents/forged-1', 95],
    ])
  })
})
