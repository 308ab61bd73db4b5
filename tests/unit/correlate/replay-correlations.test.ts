import { describe, expect, it } from 'vitest'
import { createReplay, replayCorrelations } from '../../../correlate/replay-correlations.ts'
import { leaveOutUnread } from '../../../correlate/replay-filter.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config, Correlation, NormalizedEvent } from '../../../schemas/types.ts'
import { compileSchema, formatValidationErrors } from '../../../schemas/validators.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const config: Config = loadConfig()
const isCorrelation = compileSchema<Correlation>('correlation.schema.json')

const input = (): NormalizedEvent[] => [
  edgeEvent({ id: 'e-shell', time: T0 }),
  edgeEvent({ id: 'e-find', time: T0 + 5_000, rule: 'Find AWS Credentials', priority: 'warning' }),
  coreEvent({ id: 'c-attach', time: T0 + 90_000 }),
  coreEvent({ id: 'c-secret', time: T0 + 95_000, action: 'secretsmanager:GetSecretValue', readOnly: true }),
  coreEvent({ id: 'c-denied', time: T0 + 96_000, action: 'iam:PutRolePolicy', errorCode: 'AccessDenied' }),
  coreEvent({ id: 'c-attach', time: T0 + 90_000 }),
  coreEvent({ id: 'c-noise', time: T0 + 97_000, action: 's3:GetObject', readOnly: true }),
  edgeEvent({ id: 'e-far', time: T0 + 4 * 3_600_000 }),
  coreEvent({ id: 'c-late', time: T0 + 100_000 }),
]

describe('replayCorrelations', () => {
  it('returns correlations and the summary counts', () => {
    const { correlations, late, counts } = replayCorrelations(config, input())
    expect(correlations.map((c) => [c.rule.id, c.edge.event_id, c.core.event_id])).toEqual([
      ['shell-then-iam-privilege-change', 'e-shell', 'c-attach'],
      ['shell-then-credential-access', 'e-shell', 'c-secret'],
      ['credential-search-then-secret-access', 'e-find', 'c-secret'],
      ['shell-then-iam-privilege-change', 'e-shell', 'c-denied'],
    ])
    expect(late.map((l) => l.event.id)).toEqual(['c-late'])
    expect(counts).toMatchObject({ read: 9, duplicate: 1, late: 1, correlations: 4 })
    expect(counts.ignored.no_rule).toBe(1)
    expect(new Set(correlations.map((c) => c.incident.id)).size).toBe(1)
  })

  it('gives the same bytes for the same input', () => {
    const once = JSON.stringify(replayCorrelations(config, input()).correlations)
    expect(JSON.stringify(replayCorrelations(config, input()).correlations)).toBe(once)
  })

  it('emits records valid against schemas/correlation.schema.json', () => {
    for (const c of replayCorrelations(config, input()).correlations) {
      const ok = isCorrelation(JSON.parse(JSON.stringify(c)))
      expect(formatValidationErrors(isCorrelation.errors)).toEqual([])
      expect(ok).toBe(true)
    }
  })

  it('scores a denied privilege change with a failed-attempt reason', () => {
    const denied = replayCorrelations(config, input()).correlations.find(
      (c) => c.core.event_id === 'c-denied',
    )
    expect(denied?.reasons.map((r) => r.factor)).toContain('failed_attempt')
  })

  it('holds time-only stand-ins for the events it will only ignore, with the same correlations and counts', () => {
    const revoker = 'arn:aws:iam::609418236337:role/nerve-revoker'
    const withSelf: Config = { ...config, revoke: { ...config.revoke, self_identities: [revoker] } }
    const events = [
      ...input(),
      edgeEvent({ id: 'e-internal', time: T0 + 120_000, internal: true }),
      // Below every built-in rule's minimum priority, and none names it.
      edgeEvent({
        id: 'e-other-rule',
        time: T0 + 121_000,
        rule: 'Read below etc',
        priority: 'informational',
      }),
      coreEvent({ id: 'c-by-nerve', time: T0 + 122_000, sessionIssuer: revoker }),
      coreEvent({
        id: 'c-revoke',
        time: T0 + 4 * 3_600_000 + 1_000,
        action: 'iam:PutRolePolicy',
        sessionIssuer: revoker,
        requestParameters: {
          policyName: 'AWSRevokeOlderSessions',
          roleName: 'data-cleaner-role',
          policyDocument: JSON.stringify({
            Version: '2012-10-17',
            Statement: {
              Effect: 'Deny',
              Action: '*',
              Resource: '*',
              Condition: {
                DateLessThan: { 'aws:TokenIssueTime': new Date(T0 + 4 * 3_600_000 + 1_000).toISOString() },
              },
            },
          }),
        },
      }),
      coreEvent({
        id: 'c-confirms',
        time: T0 + 4 * 3_600_000 + 2_000,
        action: 's3:GetObject',
        readOnly: true,
        errorCode: 'AccessDenied',
        sessionIssuer: 'arn:aws:iam::609418236337:role/data-cleaner-role',
      }),
      // Noise far ahead moves stream time: the shell after it is late, with stand-ins as without.
      coreEvent({ id: 'c-noise-far', time: T0 + 30 * 3_600_000, action: 's3:GetObject', readOnly: true }),
      edgeEvent({ id: 'e-after-noise', time: T0 + 5 * 3_600_000 }),
    ]
    const run = (standIns: boolean) => {
      const replay = createReplay(withSelf)
      const out = events.map((e) => {
        const held = standIns ? (replay.standIn(e) ?? e) : e
        const { correlations, late, confirmation } = replay.push(held)
        return { correlations, late: late?.event.id, confirmation: confirmation?.event_id }
      })
      return { out: JSON.stringify(out), counts: replay.counts() }
    }
    expect(run(true)).toEqual(run(false))
    expect(run(true).counts).toMatchObject({ late: 2, confirmations: 1, correlations: 4 })
    const standIns = createReplay(withSelf)
    expect(events.filter((e) => standIns.standIn(e) !== undefined).map((e) => e.id)).toEqual([
      'c-noise',
      'e-internal',
      'e-other-rule',
      'c-by-nerve',
      'c-noise-far',
    ])
  })

  it('in time order, counts a repeated id at the same event time as a duplicate, however many share that time', () => {
    const replay = createReplay(config, { sameTimeDuplicates: true })
    const at = (id: string, time: number) => coreEvent({ id, time, action: 's3:GetObject', readOnly: true })
    const ids = ['a', 'b', 'a', 'c', 'b', 'c', 'd']
    for (const id of ids) replay.push(at(id, T0))
    expect(replay.counts().duplicate).toBe(3)
    // Only the ids of the current event time are remembered: the same id later is not a replay duplicate.
    replay.push(at('a', T0 + 1))
    replay.push(at('a', T0 + 1))
    expect(replay.counts()).toMatchObject({ read: 9, duplicate: 4 })
  })

  it('gives the same correlations and counts when the fields replay leaves out of its sorted runs are gone', () => {
    const failing = () =>
      input().map((e) =>
        e.core
          ? {
              ...e,
              core: { ...e.core, error_message: 'User: arn:aws:sts::1:assumed-role/x is not authorized' },
            }
          : e,
      )
    const slim = failing().map((e) => {
      const copy = structuredClone(e)
      leaveOutUnread(copy)
      return JSON.parse(JSON.stringify(copy)) as NormalizedEvent
    })
    expect(slim.some((e) => e.core?.user_agent !== undefined || e.core?.error_message !== undefined)).toBe(
      false,
    )
    expect(slim.some((e) => e.edge && Object.keys(e.edge.output_fields).length > 0)).toBe(false)
    // The time as received, receipt time and door, and the core fields the action already says.
    const left = (e: NormalizedEvent) => [
      e.time_original,
      e.received_at,
      e.via,
      e.core?.event_source,
      e.core?.event_name,
      e.core?.event_type,
      e.core?.principal_type,
      e.core?.resources,
    ]
    expect(slim.flatMap(left).filter((v) => v !== undefined)).toEqual([])
    const full = replayCorrelations(config, failing())
    const after = replayCorrelations(config, slim)
    expect(JSON.stringify(after.correlations)).toBe(JSON.stringify(full.correlations))
    expect(after.counts).toEqual(full.counts)
  })
})
