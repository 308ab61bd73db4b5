import { describe, expect, it } from 'vitest'
import { createCorrelator } from '../../../correlate/correlator.ts'
import type { CorrelatorConfig } from '../../../correlate/correlator-types.ts'
import { createDetailInterner } from '../../../correlate/event-details.ts'
import type { CoreFields, EdgeFields } from '../../../schemas/types.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

/** The event as the correlate stage gets it from the bus: JSON.parse of the record, so its own copies. */
const fromBus = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T
const edgeOf = (options: Parameters<typeof edgeEvent>[0], hostname?: string): EdgeFields => {
  const edge = fromBus(edgeEvent(options).edge as EdgeFields)
  return hostname ? { ...edge, hostname } : edge
}
const coreOf = (options: Parameters<typeof coreEvent>[0]): CoreFields =>
  fromBus(coreEvent(options).core as CoreFields)

describe('createDetailInterner', () => {
  it('shares one detail among the alerts of a host that say the same thing, and only those', () => {
    const details = createDetailInterner()
    const first = details.edge(edgeOf({ time: 1 }))
    expect(details.edge(edgeOf({ time: 2 }))).toBe(first)
    expect(first).toEqual({
      side: 'edge',
      rule: 'Terminal shell in container',
      priority: 'notice',
      source: 'syscall',
      hostname: 'ip-10-0-1-23.ec2.internal',
      tags: ['maturity_stable', 'container', 'shell', 'mitre_execution', 'T1059'],
    })
    expect(details.edge(edgeOf({ time: 3, priority: 'warning' }))).not.toBe(first)
    expect(details.edge(edgeOf({ time: 4, tags: ['container', 'shell'] }))).not.toBe(first)
    expect(details.edge(edgeOf({ time: 5 }, 'ip-10-0-2-17.ec2.internal'))).not.toBe(first)
  })

  it("keeps one tag list for many hosts' details, never the event's own array", () => {
    const details = createDetailInterner()
    const alert = edgeOf({ time: 1 })
    const a = details.edge(alert)
    const b = details.edge(edgeOf({ time: 2 }, 'ip-10-0-2-17.ec2.internal'))
    expect(b).not.toBe(a)
    expect(b.tags).toBe(a.tags)
    alert.tags.push('changed after the fact')
    expect(a.tags).toHaveLength(5)
  })

  it('shares core details per principal and action outcome', () => {
    const details = createDetailInterner()
    const attach = details.core(coreOf({ time: 1 }))
    expect(details.core(coreOf({ time: 2 }))).toBe(attach)
    expect(attach).toMatchObject({ action: 'iam:AttachRolePolicy', region: 'sagov-west-2r' })
    expect(details.core(coreOf({ time: 3, errorCode: 'AccessDenied' }))).not.toBe(attach)
    expect(details.core(coreOf({ time: 4, principal: 'arn:aws:iam::609418236337:user/other' }))).not.toBe(
      attach,
    )
  })

  it('gives a detail read back from a checkpoint to the live events that match it', () => {
    const details = createDetailInterner()
    const restored = details.restore(fromBus(createDetailInterner().edge(edgeOf({ time: 1 }))))
    expect(details.edge(edgeOf({ time: 2 }))).toBe(restored)
    const restoredCore = details.restore(fromBus(createDetailInterner().core(coreOf({ time: 1 }))))
    expect(details.core(coreOf({ time: 2 }))).toBe(restoredCore)
  })
})

describe('releasing details with their events', () => {
  it('forgets a detail no entry holds, and the agent windows tell it when the last one goes', async () => {
    const details = createDetailInterner()
    const first = details.edge(edgeOf({ time: 1 }))
    details.forget(first)
    const again = details.edge(edgeOf({ time: 2 }))
    expect(again).not.toBe(first)
    expect(again).toEqual(first)
    const call = details.core(coreOf({ time: 1 }))
    details.forget(call)
    expect(details.core(coreOf({ time: 2 }))).not.toBe(call)

    const { createAgentWindows } = await import('../../../correlate/agent-windows.ts')
    const released: unknown[] = []
    const w = createAgentWindows({
      maxPerAgentSide: 10,
      memoryBudgetBytes: 1 << 30,
      onDetailReleased: (d) => released.push(d),
    })
    const who = w.who(w.window('a'), 'registry', {})
    w.settle(w.insert(who, again, 'x1', 1, 1, 100, 1, 0, 'out'))
    w.settle(w.insert(who, again, 'x2', 2, 1, 200, 2, 0, 'out'))
    const bytesWithTwo = w.bytes()
    w.evictExpired(150)
    expect(released).toEqual([])
    w.evictExpired(250)
    expect(released).toEqual([again])
    expect(w.bytes()).toBe(0)
    expect(bytesWithTwo).toBeGreaterThan(0)
  })
  it('keeps a value two details hold when one of them is released', () => {
    const details = createDetailInterner()
    const here = details.edge(edgeOf({ time: 1 }))
    const there = details.edge(edgeOf({ time: 2 }, 'ip-10-0-2-17.ec2.internal'))
    expect(there.tags).toBe(here.tags)
    const both = details.bytes()
    details.forget(here)
    // Forgetting twice gives nothing more back.
    details.forget(here)
    expect(details.bytes()).toBe(both)
    const third = details.edge(edgeOf({ time: 3 }, 'ip-10-0-3-5.ec2.internal'))
    expect(third.tags).toBe(there.tags)
    expect(third.rule).toBe(there.rule)
    details.forget(there)
    details.forget(third)
    expect(details.sharedSize()).toBe(0)
    expect(details.bytes()).toBe(0)
  })

  it('gives back the values of a detail the lookup lists had already dropped', () => {
    const details = createDetailInterner()
    // 65 distinct alerts of one host: the first leaves the per-host list while still buffered.
    const made = Array.from({ length: 65 }, (_, i) =>
      details.edge(edgeOf({ time: i, rule: `Drift detected ${i}`, tags: [`t-${i}`] })),
    )
    for (const detail of made) details.forget(detail)
    expect(details.sharedSize()).toBe(0)
    expect(details.bytes()).toBe(0)
  })
})

describe('the shared values of a correlator under a flood of distinct alerts', () => {
  const B = 60_000
  const A = 600_000
  const G = 300_000
  const T0 = Date.UTC(2024, 7, 1, 13, 30)
  const config = (max = 1000): CorrelatorConfig => ({
    rules: [{ id: 'any-then-iam', edge: {}, core: { actions: ['iam:*'] }, severity: 80, revoke: true }],
    window: { before: B, after: A, grace: G },
    max_events_per_agent: max,
    memory_budget_bytes: 256 * 1024 * 1024,
    incident_gap: 1_800_000,
    self_identities: ['arn:aws:iam::609418236337:role/nerve-revoker'],
  })
  /** A no-rule CloudTrail event of another agent: only moves stream time. */
  const tick = (time: number) =>
    coreEvent({ id: `tick-${time}`, time, agent: 'clock', action: 's3:GetObject', readOnly: true })
  const hostile = (i: number) =>
    edgeEvent({
      id: `hostile-${i}`,
      time: T0 + i,
      rule: `Terminal shell in container ${i}`,
      tags: Array.from({ length: 64 }, (_, k) => `${i}-${k}-`.padEnd(128, 'x')),
    })

  it.each([
    ['all buffered until they expire', 1000],
    ['shed past the per-agent cap, then expired', 50],
  ])('are all released with their events (%s)', (_name, max) => {
    const c = createCorrelator(config(max))
    for (let i = 0; i < 400; i++) c.accept(hostile(i))
    c.accept(
      coreEvent({ time: T0 + 500, errorCode: 'AccessDenied', target: 'arn:aws:iam::609418236337:role/x' }),
    )
    const during = c.stats()
    expect(during.shared_bytes).toBeGreaterThan(0)
    // Only the buffered ones hold theirs: at most the cap's worth of 64 tags of 128 characters.
    expect(during.shared_bytes).toBeLessThan(
      (Math.min(max, 400) + 2) * 64 * 2 * (64 + 32 + 2 * 128 + 2 * 140),
    )
    c.accept(tick(T0 + 2 * (A + G + B)))
    expect(c.stats().buffered).toBe(0)
    expect(c.stats().shared_bytes).toBe(0)
    // What is still held stays: the same bytes as a correlator that only ever saw the buffered alert.
    const later = T0 + 2 * (A + G + B) + 1
    c.accept(edgeEvent({ id: 'kept', time: later }))
    const fresh = createCorrelator(config(max))
    fresh.accept(tick(T0 + 2 * (A + G + B)))
    fresh.accept(edgeEvent({ id: 'kept', time: later }))
    expect(c.stats().shared_bytes).toBe(fresh.stats().shared_bytes)
    expect(c.stats().shared_bytes).toBeGreaterThan(0)
  })
})
