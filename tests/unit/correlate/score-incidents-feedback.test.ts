import { describe, expect, it } from 'vitest'
import { createCorrelator } from '../../../correlate/correlator.ts'
import type { CorrelatorConfig } from '../../../correlate/correlator-types.ts'
import { createIncidentGrouper } from '../../../correlate/group-incidents.ts'
import { scoreCorrelation } from '../../../correlate/score-correlation.ts'
import { isDenyOlderSessions } from '../../../ingest/revoke-request.ts'
import type { CoreFields, Correlation, RuleConfig } from '../../../schemas/types.ts'
import { denyOlderSessions } from '../../helpers/deny-older-sessions.ts'
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
        policyDocument: denyOlderSessions(new Date(T0 + 60_000).toISOString()),
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

  // The role's credentials come back by themselves after a revoke (IRSA, instance profiles): a fresh session
  // is not denied by it, so a denied call of one was denied for something else, an attempt that counts.
  it('counts a denied call of a session issued after the revoke as a threat, not a confirmation', () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ time: T0 }))
    c.accept(revokeSessions())
    const issuedBefore = T0 + 60_000
    const withSession = (created: number, id: string) => {
      const event = deniedCall(T0 + 180_000, id)
      ;(event.core as CoreFields).session_created = created
      return event
    }
    const old = c.accept(withSession(issuedBefore - 3_600_000, 'denied-old-session'))
    expect(old).toMatchObject({ ignored: 'revoke_confirmation', correlations: [] })
    const fresh = c.accept(withSession(issuedBefore, 'denied-fresh-session'))
    expect(fresh.confirmation).toBeUndefined()
    expect(fresh.correlations.map((x) => x.core.event_id)).toEqual(['denied-fresh-session'])
  })

  it('treats the exact deny-older-sessions policy by someone else as a revoke, not a threat', () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ time: T0 }))
    const human = revokeSessions({
      principal: 'arn:aws:iam::609418236337:user/christophe',
      sessionIssuer: undefined,
    })
    expect(c.accept(human).ignored).toBe('revoke_action')
    expect(c.accept(deniedCall(T0 + 62_000)).confirmation?.target).toEqual({
      kind: 'role',
      name: 'data-cleaner',
      account: '609418236337',
    })
  })

  // The attack: the watched agent "revokes" the sessions of nerve's own revoker, so that the revoke of its
  // incident fails. By what it does that is an attack on the defender: an ordinary call, correlated.
  it("revoking the sessions of nerve's revoker is no revoke: it is correlated", () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ time: T0 }))
    const attack = revokeSessions({
      id: 'revoke-the-revoker',
      principal: 'arn:aws:sts::609418236337:assumed-role/data-cleaner/botocore-session-1',
      sessionIssuer: agentRole,
      requestParameters: {
        roleName: 'nerve-revoker',
        policyName: 'AWSRevokeOlderSessions',
        policyDocument: denyOlderSessions(new Date(T0 + 60_000).toISOString()),
      },
    })
    const result = c.accept(attack)
    expect(result.ignored).toBeUndefined()
    expect(result.correlations.map((x) => x.core.event_id)).toEqual(['revoke-the-revoker'])
    // IAM does not tell role names apart by case: NERVE-REVOKER is the same role.
    const shouted = revokeSessions({
      id: 'revoke-the-revoker-shouted',
      principal: 'arn:aws:sts::609418236337:assumed-role/data-cleaner/botocore-session-1',
      sessionIssuer: agentRole,
      requestParameters: {
        roleName: 'NERVE-Revoker',
        policyName: 'AWSRevokeOlderSessions',
        policyDocument: denyOlderSessions(new Date(T0 + 60_000).toISOString()),
      },
    })
    expect(c.accept(shouted).ignored).toBeUndefined()
    // In another account a role of the same name is another role: its revoke is one.
    const elsewhere = revokeSessions({
      id: 'revoke-elsewhere',
      principal: 'arn:aws:iam::111122223333:user/christophe',
      sessionIssuer: undefined,
      requestParameters: {
        roleName: 'nerve-revoker',
        policyName: 'AWSRevokeOlderSessions',
        policyDocument: denyOlderSessions(new Date(T0 + 60_000).toISOString()),
      },
    })
    ;(elsewhere.core as CoreFields).account_id = '111122223333'
    expect(c.accept(elsewhere).ignored).toBe('revoke_action')
  })

  // The correlator never parses a request: an event published by a nerve before core.revokes (a bus backlog
  // at an upgrade) is an ordinary call, its denied calls attempts, whatever its raw policy document says.
  it('reads what a call revokes from core.revokes only, not from its raw request', () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ time: T0 }))
    const earlier = revokeSessions({
      principal: 'arn:aws:iam::609418236337:user/christophe',
      sessionIssuer: undefined,
    })
    if (earlier.core) earlier.core.revokes = undefined
    expect(c.accept(earlier).ignored).toBeUndefined()
    expect(c.accept(deniedCall(T0 + 62_000)).confirmation).toBeUndefined()
  })

  // The attack: the watched agent grants itself everything under the revoke's name.
  it('an AWSRevokeOlderSessions that allows *:* is an escalation, correlated, and confirms nothing', () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ time: T0 }))
    const escalation = revokeSessions({
      id: 'escalation-1',
      principal: 'arn:aws:sts::609418236337:assumed-role/data-cleaner/botocore-session-1',
      sessionIssuer: agentRole,
      requestParameters: {
        roleName: 'data-cleaner',
        policyName: 'AWSRevokeOlderSessions',
        policyDocument:
          '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
      },
    })
    const result = c.accept(escalation)
    expect(result.ignored).toBeUndefined()
    expect(result.correlations).toHaveLength(1)
    expect(result.correlations[0]?.core.action).toBe('iam:PutRolePolicy')
    const denied = c.accept(deniedCall(T0 + 120_000))
    expect(denied.confirmation).toBeUndefined()
    expect(denied.correlations).toHaveLength(1)
  })

  it.each([
    [
      'an extra Allow statement',
      (t: string) => ({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Deny',
            Action: '*',
            Resource: '*',
            Condition: { DateLessThan: { 'aws:TokenIssueTime': t } },
          },
          { Effect: 'Allow', Action: '*', Resource: '*' },
        ],
      }),
    ],
    [
      'no condition',
      () => ({ Version: '2012-10-17', Statement: { Effect: 'Deny', Action: '*', Resource: '*' } }),
    ],
    [
      'NotAction',
      (t: string) => ({
        Version: '2012-10-17',
        Statement: {
          Effect: 'Deny',
          NotAction: 'iam:*',
          Resource: '*',
          Condition: { DateLessThan: { 'aws:TokenIssueTime': t } },
        },
      }),
    ],
    [
      'a narrower action',
      (t: string) => ({
        Version: '2012-10-17',
        Statement: {
          Effect: 'Deny',
          Action: 's3:*',
          Resource: '*',
          Condition: { DateLessThan: { 'aws:TokenIssueTime': t } },
        },
      }),
    ],
    [
      'an issue time years before the call',
      () => ({
        Version: '2012-10-17',
        Statement: {
          Effect: 'Deny',
          Action: '*',
          Resource: '*',
          Condition: { DateLessThan: { 'aws:TokenIssueTime': '2001-01-01T00:00:00Z' } },
        },
      }),
    ],
    [
      'another condition operator',
      (t: string) => ({
        Version: '2012-10-17',
        Statement: {
          Effect: 'Deny',
          Action: '*',
          Resource: '*',
          Condition: { DateGreaterThan: { 'aws:TokenIssueTime': t } },
        },
      }),
    ],
  ])('a revoke-named policy with %s is no revoke', (_name, doc) => {
    const when = new Date(T0 + 60_000).toISOString()
    expect(isDenyOlderSessions(JSON.stringify(doc(when)), T0 + 60_000)).toBe(false)
  })

  it('recognises the console document as a string, an object, URL-encoded, or with one-element lists', () => {
    const t = T0 + 60_000
    const doc = JSON.parse(denyOlderSessions(new Date(t).toISOString()))
    expect(isDenyOlderSessions(JSON.stringify(doc), t)).toBe(true)
    expect(isDenyOlderSessions(doc, t)).toBe(true)
    expect(isDenyOlderSessions(encodeURIComponent(JSON.stringify(doc)), t)).toBe(true)
    const listed = { ...doc, Statement: [{ ...doc.Statement, Action: ['*'], Resource: ['*'] }] }
    expect(isDenyOlderSessions(listed, t)).toBe(true)
  })

  const deactivateKey = (over: Partial<Parameters<typeof coreEvent>[0]>) =>
    coreEvent({
      id: 'deactivate-1',
      time: T0 + 61_000,
      action: 'iam:UpdateAccessKey',
      requestParameters: { userName: 'svc', accessKeyId: 'AKIA0W5KI69TY8X86BGT', status: 'Inactive' },
      ...over,
    })
  const deniedWithKey = () =>
    coreEvent({
      time: T0 + 62_000,
      action: 'iam:AttachRolePolicy',
      accessKeyId: 'AKIA0W5KI69TY8X86BGT',
      errorCode: 'InvalidClientTokenId',
    })

  it('key deactivation by the watched agent is an ordinary event (T1531), not a revoke', () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ time: T0 }))
    const deactivate = deactivateKey({ accessKeyId: 'AKIA0W5KI69TY8X86BGT' })
    expect(c.accept(deactivate).correlations).toHaveLength(1)
    expect(c.accept(deniedWithKey()).confirmation).toBeUndefined()
  })

  it("key deactivation by nerve's revoker is a revoke and marks the key", () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ time: T0 }))
    const deactivate = deactivateKey({
      principal: 'arn:aws:sts::609418236337:assumed-role/nerve-revoker/revoke-incident-1',
      sessionIssuer: revoker,
    })
    expect(c.accept(deactivate).ignored).toBe('self_action')
    expect(c.accept(deniedWithKey()).confirmation?.target).toEqual({
      kind: 'access_key',
      name: 'AKIA0W5KI69TY8X86BGT',
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

/** The first `n` emitted per rule, and those over it, each of which must rename or merge its incident. */
function withinBound(emitted: readonly Correlation[], n: number) {
  const perRule = new Map<string, number>()
  const kept: Correlation[] = []
  const extra: Correlation[] = []
  for (const x of emitted) {
    const seen = perRule.get(x.rule.id) ?? 0
    if (seen < n) {
      perRule.set(x.rule.id, seen + 1)
      kept.push(x)
    } else {
      expect(x.incident.merged?.length).toBeGreaterThan(0)
      extra.push(x)
    }
  }
  return { kept, extra }
}

// The N × M flood: 200 alerts then 200 denied CreateAccessKey calls of one agent make 40,000 pairs of the
// same rule. Each incident keeps the first N per rule; the rest are counted on it as suppressed.
describe('incident suppression bound', () => {
  it('keeps the first N correlations of a rule per incident and counts the rest, with the true total', () => {
    const c = createCorrelator({ ...config, max_correlations_per_incident_rule: 50 })
    // Each alert differs (another file), so none collapses into another (collapse-repeats.test.ts).
    for (let i = 0; i < 200; i++)
      c.accept(edgeEvent({ id: `shadow-${i}`, time: T0 + i * 10, output: `file=/etc/shadow-${i}` }))
    const emitted = []
    for (let i = 0; i < 200; i++) {
      const denied = coreEvent({
        id: `cak-${i}`,
        time: T0 + 5_000 + i * 10,
        action: 'iam:CreateAccessKey',
        errorCode: 'AccessDenied',
      })
      emitted.push(...c.accept(denied).correlations)
    }
    // Over the bound, only those that rename the incident (a smaller id at the same time) are emitted.
    const { kept, extra } = withinBound(emitted, 50)
    expect(kept).toHaveLength(50)
    expect(extra.length).toBeLessThan(10)
    const suppressed = 40_000 - emitted.length
    expect(c.stats()).toMatchObject({ correlations: emitted.length, suppressed })
    const incident = c.snapshot().incidents[0]
    expect(incident).toMatchObject({ correlation_count: 40_000, suppressed_count: suppressed })
  })

  it('bounds per rule: a second rule of the same incident still gets its own first N', () => {
    const second: RuleConfig = {
      id: 'any-then-key',
      edge: {},
      core: { actions: ['iam:CreateAccessKey'] },
      severity: 90,
      revoke: true,
    }
    const c = createCorrelator({ ...config, rules: [rule, second], max_correlations_per_incident_rule: 3 })
    for (let i = 0; i < 5; i++) c.accept(edgeEvent({ id: `e-${i}`, time: T0 + i }))
    const all = c.accept(coreEvent({ id: 'cak', time: T0 + 100, action: 'iam:CreateAccessKey' })).correlations
    // A pair over the bound that renames the incident is emitted too: only it says `merged`.
    const out = withinBound(all, 3).kept
    expect(out.map((x) => x.rule.id)).toEqual([
      'any-then-any',
      'any-then-key',
      'any-then-any',
      'any-then-key',
      'any-then-any',
      'any-then-key',
    ])
    expect(c.stats().suppressed).toBe(10 - all.length)
    const later = c.accept(coreEvent({ id: 'attach', time: T0 + 200 })).correlations
    expect(later).toEqual([])
  })
})

describe('incident suppression never hides the strongest evidence', () => {
  it('emits a correlation over the bound when it scores higher than every one of its rule so far', () => {
    const c = createCorrelator({ ...config, max_correlations_per_incident_rule: 2 })
    // Three distant alerts first: their pairs with the call score low on proximity.
    for (let i = 0; i < 3; i++) c.accept(edgeEvent({ id: `far-${i}`, time: T0 + i }))
    const first = c.accept(coreEvent({ id: 'attach', time: T0 + 800_000 })).correlations
    expect(withinBound(first, 2).kept).toHaveLength(2)
    // An alert 50 s after the call: its pair scores higher on proximity, so it is still emitted.
    const near = c.accept(edgeEvent({ id: 'near', time: T0 + 850_000 })).correlations
    const best = Math.max(...first.map((x) => x.score))
    expect(near.map((x) => x.edge.event_id)).toEqual(['near'])
    expect(near[0]?.score).toBeGreaterThan(best)
    expect(near[0]?.incident.suppressed_count ?? 0).toBe(3 - first.length)
    // The same evidence again (an equal score) is suppressed.
    expect(c.accept(edgeEvent({ id: 'near-again', time: T0 + 850_001 })).correlations).toEqual([])
    expect(c.stats().suppressed).toBe(4 - first.length)
  })
})
