import { describe, expect, it } from 'vitest'
import { createAgentWindows } from '../../../correlate/agent-windows.ts'
import { createCorrelator } from '../../../correlate/correlator.ts'
import type { CorrelatorConfig } from '../../../correlate/correlator-types.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { anyThenIam, coreEvent, edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const config: CorrelatorConfig = {
  rules: [anyThenIam],
  window: { before: 60_000, after: 600_000, grace: 300_000 },
  max_events_per_agent: 1000,
  memory_budget_bytes: 256 * 1024 * 1024,
  incident_gap: 1_800_000,
  self_identities: ['arn:aws:iam::609418236337:role/nerve-revoker'],
}

/** An object's members in the reverse order, nested objects too (arrays kept): another hidden class. */
const reversed = (value: unknown): unknown => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value
  const entries = Object.entries(value as Record<string, unknown>).reverse()
  return Object.fromEntries(entries.map(([k, v]) => [k, reversed(v)]))
}

/** The event as the correlate stage gets it from the bus (JSON.parse of its record). */
const fromBus = (event: NormalizedEvent, reorder = false): NormalizedEvent =>
  JSON.parse(JSON.stringify(reorder ? reversed(event) : event)) as NormalizedEvent

/**
 * A sequence where the agent's calls come in several shapes: with and without an error code, a target, a
 * session issuer; its alerts and calls from two identities.
 */
const events = (): NormalizedEvent[] => [
  edgeEvent({ id: 'shell-1', time: T0 }),
  coreEvent({ id: 'attach-1', time: T0 + 1_000 }),
  coreEvent({ id: 'attach-2', time: T0 + 2_000, errorCode: 'AccessDenied' }),
  coreEvent({ id: 'attach-3', time: T0 + 3_000, target: 'stratus-red-team-malicious-iam-role' }),
  coreEvent({
    id: 'attach-4',
    time: T0 + 4_000,
    principal: 'arn:aws:sts::609418236337:assumed-role/data-cleaner/session-1',
    sessionIssuer: 'arn:aws:iam::609418236337:role/data-cleaner',
    accessKeyId: 'ASIA0W5KI69TY8X86BGT',
  }),
  edgeEvent({ id: 'shell-2', time: T0 + 5_000, priority: 'warning' }),
  coreEvent({ id: 'attach-5', time: T0 + 6_000, target: 'another-role' }),
]

const correlationsOf = (input: NormalizedEvent[]) => {
  const correlator = createCorrelator(config)
  return input.flatMap((event) => correlator.accept(event).correlations)
}

describe('the correlator on events of many shapes', () => {
  it('gives the same correlations, byte for byte, whatever order the members of an event come in', () => {
    const plain = correlationsOf(events().map((e) => fromBus(e)))
    const mixed = correlationsOf(events().map((e, i) => fromBus(e, i % 2 === 1)))
    expect(plain).toHaveLength(10)
    expect(mixed.map((c) => c.id)).toEqual(plain.map((c) => c.id))
    // The records differ only in the identity's key order, which is the event's own.
    const withoutIdentity = (c: (typeof plain)[number]) => JSON.stringify({ ...c, agent: c.agent.id })
    expect(mixed.map(withoutIdentity)).toEqual(plain.map(withoutIdentity))
    expect(mixed.map((c) => c.agent.identity)).toEqual(plain.map((c) => c.agent.identity))
  })

  it('writes out a call without the members it did not have', () => {
    const [withTarget, withError] = correlationsOf(
      [events()[0], events()[3], events()[2]].map((e) => fromBus(e as NormalizedEvent)),
    )
    expect(withTarget?.core.target).toBe('stratus-red-team-malicious-iam-role')
    expect(Object.keys(withTarget?.core ?? {})).not.toContain('error_code')
    expect(withError?.core.error_code).toBe('AccessDenied')
    expect(Object.keys(withError?.core ?? {})).not.toContain('target')
  })
})

describe('an agent identity', () => {
  const windows = () => createAgentWindows({ maxPerAgentSide: 10, memoryBudgetBytes: 1 << 20 })

  it('is the same whatever order its members come in, and keeps the order it first came in', () => {
    const w = windows()
    const window = w.window('data-cleaner')
    const identity = { principal_arn: 'arn:aws:iam::1:user/a', access_key_id: 'AKIA1', account_id: '1' }
    const who = w.who(window, 'registry', identity)
    expect(w.who(window, 'registry', reversed(identity) as typeof identity)).toBe(who)
    expect(Object.keys(who.identity)).toEqual(['principal_arn', 'access_key_id', 'account_id'])
  })

  it('is another one when a member is absent, added or different', () => {
    const w = windows()
    const window = w.window('data-cleaner')
    const identity = { principal_arn: 'arn:aws:iam::1:user/a', access_key_id: 'AKIA1', account_id: '1' }
    const who = w.who(window, 'registry', identity)
    expect(w.who(window, 'registry', { principal_arn: identity.principal_arn, account_id: '1' })).not.toBe(
      who,
    )
    expect(w.who(window, 'registry', { ...identity, host: 'i-0123456789abcdef0' })).not.toBe(who)
    expect(w.who(window, 'registry', { ...identity, access_key_id: 'AKIA2' })).not.toBe(who)
    expect(w.who(window, 'workload', identity)).not.toBe(who)
  })
})
