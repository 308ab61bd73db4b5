import { describe, expect, it } from 'vitest'
import { type CorrelatorConfig, createCorrelator } from '../../../correlate/correlator.ts'
import { createIncidentGrouper } from '../../../correlate/group-incidents.ts'
import { scoreCorrelation } from '../../../correlate/score-correlation.ts'
import type { RuleConfig } from '../../../schemas/types.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const revoker = 'arn:aws:iam::609418236337:role/nerve-revoker'
const agentRole = 'arn:aws:iam::609418236337:role/data-cleaner'
const rule: RuleConfig = { id: 'any-then-any', edge: {}, core: {}, severity: 80, revoke: true }
const config: CorrelatorConfig = {
  rules: [rule],
  window: { before: 120_000, after: 900_000, grace: 1_200_000 },
  max_events_per_agent: 1000,
  memory_budget_bytes: 1 << 28,
  incident_gap: 1_800_000,
  self_identities: [revoker],
}

describe('scoreCorrelation', () => {
  it('lists every factor with its points and caps at 100', () => {
    const { score, reasons } = scoreCorrelation({
      severity: 90,
      priority: 'critical',
      action: 'iam:AttachRolePolicy',
      readOnly: false,
      errorCode: 'AccessDenied',
      deltaMs: 30_000,
    })
    expect(reasons).toEqual([
      { factor: 'rule_severity', points: 45, detail: 'rule severity 90/100' },
      { factor: 'edge_priority', points: 20, detail: 'Falco priority critical' },
      { factor: 'action_risk', points: 20, detail: 'iam:AttachRolePolicy is critical' },
      {
        factor: 'failed_attempt',
        points: 5,
        detail: 'iam:AttachRolePolicy was denied (AccessDenied): an attempt still shows intent',
      },
      { factor: 'proximity', points: 10, detail: 'core event 30s after the edge event' },
    ])
    expect(score).toBe(100)
  })

  it('scores a distant read-only call of a low rule low', () => {
    const { score, reasons } = scoreCorrelation({
      severity: 20,
      priority: 'informational',
      action: 'ec2:DescribeInstances',
      readOnly: true,
      errorCode: undefined,
      deltaMs: -100_000,
    })
    expect(score).toBe(10 + 0 + 3 + 6)
    expect(reasons.map((r) => r.factor)).toEqual([
      'rule_severity',
      'edge_priority',
      'action_risk',
      'proximity',
    ])
    expect(reasons.at(-1)?.detail).toBe('core event 100s before the edge event')
  })

  it('ranks credential access between critical changes and plain writes', () => {
    const risk = (action: string) =>
      scoreCorrelation({
        severity: 0,
        priority: 'debug',
        action,
        readOnly: false,
        errorCode: undefined,
        deltaMs: 2e6,
      }).score
    expect(risk('iam:CreateAccessKey')).toBe(20)
    expect(risk('secretsmanager:GetSecretValue')).toBe(15)
    expect(risk('ec2:RunInstances')).toBe(15)
    expect(risk('ec2:CreateTags')).toBe(8)
  })
})

describe('incidents', () => {
  it('groups one agent within the gap, splits beyond it, and never mixes agents', () => {
    const g = createIncidentGrouper(1_000)
    const a1 = g.assign('a', 10_000, 'c1', ['edge:x', 'core:y'])
    const a2 = g.assign('a', 10_900, 'c2', ['edge:x', 'core:z'])
    const b1 = g.assign('b', 10_000, 'c3', ['edge:x'])
    const a3 = g.assign('a', 12_000, 'c4', [])
    expect(a2).toMatchObject({ id: a1.id, first_seen: 10_000, last_seen: 10_900, correlation_count: 2 })
    expect(a2.signals).toEqual(['core:y', 'core:z', 'edge:x'])
    expect(b1.id).not.toBe(a1.id)
    expect(a3.id).not.toBe(a1.id)
    // Earlier than the incident's first correlation: the incident is renamed after it, and says so.
    const a5 = g.assign('a', 9_500, 'c5', [])
    expect(a5).toMatchObject({ first_seen: 9_500, correlation_count: 3, merged: [a1.id] })
  })

  it('gives the same incident ids on a replay of the same input', () => {
    const run = () => {
      const c = createCorrelator(config)
      return [
        edgeEvent({ id: 'e1', time: T0 }),
        coreEvent({ id: 'c1', time: T0 + 60_000 }),
        coreEvent({ id: 'c2', time: T0 + 120_000 }),
      ].flatMap((e) => c.accept(e).correlations.map((x) => x.incident))
    }
    const first = run()
    expect(first).toHaveLength(2)
    expect(first[1]).toMatchObject({ id: first[0]?.id, correlation_count: 2 })
    expect(run()).toEqual(first)
  })

  it('forgets incidents once no correlation can join them', () => {
    const g = createIncidentGrouper(1_000)
    g.assign('a', 10_000, 'c1', [])
    g.forgetBefore(11_000)
    expect(g.size()).toBe(1)
    g.forgetBefore(11_001)
    expect(g.size()).toBe(0)
  })
})

describe('no feedback loop', () => {
  const revokeSessions = (over: Partial<Parameters<typeof coreEvent>[0]> = {}) =>
    coreEvent({
      id: 'revoke-1',
      time: T0 + 60_000,
      action: 'iam:PutRolePolicy',
      principal: 'arn:aws:sts::609418236337:assumed-role/nerve-revoker/revoke-incident-1',
      sessionIssuer: revoker,
      requestParameters: {
        roleName: 'data-cleaner',
        policyName: 'AWSRevokeOlderSessions',
        policyDocument:
          '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"]}]}',
      },
      ...over,
    })
  const deniedCall = (time: number, id = `denied-${time}`) =>
    coreEvent({
      id,
      time,
      action: 'iam:AttachRolePolicy',
      principal: 'arn:aws:sts::609418236337:assumed-role/data-cleaner/botocore-session-1',
      sessionIssuer: agentRole,
      errorCode: 'AccessDenied',
    })

  it('never correlates the revoke itself, and records denied calls after it as confirmation', () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ time: T0 }))
    expect(c.accept(revokeSessions())).toMatchObject({ ignored: 'self_action', correlations: [] })
    const result = c.accept(deniedCall(T0 + 120_000))
    expect(result.correlations).toEqual([])
    expect(result.confirmation).toEqual({
      event_id: `denied-${T0 + 120_000}`,
      agent_id: 'data-cleaner',
      action: 'iam:AttachRolePolicy',
      error_code: 'AccessDenied',
      revoke_event_id: 'revoke-1',
      target: { kind: 'role', name: 'data-cleaner', account: '609418236337' },
      after_ms: 60_000,
    })
  })

  it('treats a revoke-shaped action by someone else as a revoke, not a threat', () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ time: T0 }))
    const human = revokeSessions({
      principal: 'arn:aws:iam::609418236337:user/christophe',
      sessionIssuer: undefined,
    })
    expect(c.accept(human).ignored).toBe('revoke_action')
    const key = coreEvent({
      id: 'deactivate-1',
      time: T0 + 61_000,
      action: 'iam:UpdateAccessKey',
      requestParameters: { userName: 'svc', accessKeyId: 'AKIA0W5KI69TY8X86BGT', status: 'Inactive' },
    })
    expect(c.accept(key).ignored).toBe('revoke_action')
    expect(c.accept(deniedCall(T0 + 62_000)).confirmation?.target).toEqual({
      kind: 'role',
      name: 'data-cleaner',
      account: '609418236337',
    })
  })

  it('keys revoke marks by account and role: the same role name in another account is not confirmed', () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ time: T0 }))
    c.accept(revokeSessions())
    const elsewhere = coreEvent({
      id: 'denied-other-account',
      time: T0 + 90_000,
      action: 'iam:AttachRolePolicy',
      principal: 'arn:aws:sts::111122223333:assumed-role/data-cleaner/botocore-session-1',
      sessionIssuer: 'arn:aws:iam::111122223333:role/data-cleaner',
      errorCode: 'AccessDenied',
    })
    const result = c.accept(elsewhere)
    expect(result.confirmation).toBeUndefined()
    expect(result.correlations).toHaveLength(1)
  })

  it('a denied call before the revoke, or after its confirmation window, is a normal event', () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ time: T0 }))
    c.accept(revokeSessions())
    expect(c.accept(deniedCall(T0 + 30_000)).correlations).toHaveLength(1)
    c.accept(edgeEvent({ id: 'e-later', time: T0 + 60_000 + 1_800_001 }))
    const result = c.accept(deniedCall(T0 + 60_000 + 1_800_001))
    expect(result.confirmation).toBeUndefined()
    expect(result.correlations).toHaveLength(1)
  })

  it('an UpdateAccessKey to Active is no revoke and is matched like any action', () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ time: T0 }))
    const reactivate = coreEvent({
      time: T0 + 1,
      action: 'iam:UpdateAccessKey',
      requestParameters: { accessKeyId: 'AKIA0W5KI69TY8X86BGT', status: 'Active' },
    })
    expect(c.accept(reactivate).correlations).toHaveLength(1)
  })
})
