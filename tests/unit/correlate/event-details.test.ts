import { describe, expect, it } from 'vitest'
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
})
