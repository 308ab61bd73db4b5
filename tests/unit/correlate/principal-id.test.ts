// A correlation names its caller's principal id (CloudTrail userIdentity.principalId) as core.principal_id,
// so that its Elasticsearch alert carries user.id as the call's own documents do. Real Stratus Red Team
// detonations (stratus-detonations.ts). Checkpoints written before the field existed hold details without
// it: they restore, and what they buffered pairs without one, while new calls of the same caller carry it.
import { describe, expect, it } from 'vitest'
import { createCorrelator } from '../../../correlate/correlator.ts'
import { correlatorConfigOf } from '../../../correlate/correlator-config.ts'
import type { CorrelatorState } from '../../../correlate/correlator-state.ts'
import type { Correlation, NormalizedEvent } from '../../../schemas/types.ts'
import { compileSchema, formatValidationErrors } from '../../../schemas/validators.ts'
import {
  detonation,
  stratusRecords,
  stratusTechniques,
  victimConfig,
  whoAmIConfig,
} from './stratus-detonations.ts'

const isCorrelation = compileSchema<Correlation>('correlation.schema.json')
type Caller = { userIdentity?: { principalId?: string; arn?: string; type?: string } }

const expectValid = (c: Correlation) => {
  const ok = isCorrelation(c)
  expect(formatValidationErrors(isCorrelation.errors), c.id).toEqual([])
  expect(ok).toBe(true)
}

describe('core.principal_id', () => {
  it("is the CloudTrail call's userIdentity.principalId in every correlation of the Stratus detonations", () => {
    const types = new Set<string>()
    let count = 0
    for (const [, from, to] of stratusTechniques) {
      const { events, correlations } = detonation(stratusRecords(from, to), whoAmIConfig)
      const byId = new Map(events.map((e) => [e.id, e]))
      for (const c of correlations) {
        const record = (byId.get(c.core.event_id) as NormalizedEvent).raw as Caller
        expect({ id: c.core.event_id, principal_id: c.core.principal_id }).toEqual({
          id: c.core.event_id,
          principal_id: record.userIdentity?.principalId,
        })
        types.add(record.userIdentity?.type ?? '')
        expectValid(c)
        count++
      }
    }
    expect(count).toBeGreaterThan(100)
    // Roles' sessions, IAM users and a federated user (ACCOUNT:caller-chosen-name) alike.
    expect([...types].sort()).toEqual(['AssumedRole', 'FederatedUser', 'IAMUser'])
    const federated = detonation(stratusRecords(308, 309), whoAmIConfig).correlations.find((c) =>
      c.core.principal.includes(':federated-user/'),
    )
    expect(federated?.core.principal_id).toBe('742491224508:stratus_red_team')
  })

  it('names no agent: the same call under another principal id goes to the same agent, with the same id', () => {
    const records = stratusRecords(308, 309)
    const renamed = stratusRecords(308, 309).map((r) => {
      const ui = r.userIdentity as { principalId: string }
      // The federated user's caller picked its name: it chooses one that reads as another principal's id.
      ui.principalId = 'AROAHKPEEQ9BHUOX4D93T:aws-go-sdk-1722587398902687000'
      return r
    })
    const before = detonation(records, whoAmIConfig).correlations
    const after = detonation(renamed, whoAmIConfig).correlations
    expect(before.some((c) => c.core.principal.includes(':federated-user/'))).toBe(true)
    expect(after.length).toBe(before.length)
    expect(after.map((c) => [c.id, c.agent, c.incident.id])).toEqual(
      before.map((c) => [c.id, c.agent, c.incident.id]),
    )
    expect(after.map((c) => c.core.principal_id)).not.toEqual(before.map((c) => c.core.principal_id))
  })

  it('is absent from what a checkpoint written before it buffered, and present for calls after', () => {
    const { events } = detonation(stratusRecords(1, 34))
    const alert = events.find((e) => e.side === 'edge') as NormalizedEvent
    const calls = events.filter((e) => e.side === 'core')
    const config = correlatorConfigOf(victimConfig)
    const before = createCorrelator(config)
    for (const e of calls.slice(0, 20)) before.accept(e)
    // The checkpoint as an earlier version wrote it: the same, without principal_id in any detail.
    const state = JSON.parse(JSON.stringify(before.snapshot())) as CorrelatorState
    let buffered = 0
    for (const entry of state.entries) {
      if (entry.detail.side !== 'core') continue
      expect(entry.detail.principal_id).toMatch(/^AROA|^AIDA/)
      delete entry.detail.principal_id
      buffered++
    }
    expect(buffered).toBeGreaterThan(0)
    const restored = createCorrelator(config, state)
    const old = restored.accept(alert).correlations
    expect(old.length).toBeGreaterThan(0)
    for (const c of old) {
      expect('principal_id' in c.core).toBe(false)
      expectValid(c)
    }
    const fresh = calls.slice(20).flatMap((e) => restored.accept(e).correlations)
    expect(fresh.length).toBeGreaterThan(0)
    for (const c of fresh) {
      const call = calls.find((e) => e.id === c.core.event_id)?.raw as Caller
      expect(c.core.principal_id).toBe(call.userIdentity?.principalId)
    }
  })
})
