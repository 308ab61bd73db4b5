// The correlator against a brute-force join over the same input: same pairs, each emitted once, for random
// interleavings with out-of-order times, redeliveries, lateness per side and three rules with different
// windows. A pair is found iff neither member was late for its rule (L1 + S1).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createCorrelator } from '../../../correlate/correlator.ts'
import type { FalcoPriority, NormalizedEvent, RuleConfig } from '../../../schemas/types.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

const rules: RuleConfig[] = [
  {
    id: 'r1',
    edge: {},
    core: { actions: ['iam:*'] },
    window: { before: 20, after: 30, grace: 15 },
    severity: 50,
    revoke: false,
  },
  {
    id: 'r2',
    edge: { rules: ['Terminal*'] },
    core: { actions: ['iam:Attach*', 'sts:Get*'] },
    window: { before: 5, after: 50, grace: 40 },
    severity: 50,
    revoke: false,
  },
  {
    id: 'r3',
    edge: { min_priority: 'warning' },
    core: { actions: ['sts:*'] },
    window: { before: 0, after: 10, grace: 0 },
    severity: 50,
    revoke: false,
  },
]

type Spec = { edge: boolean; agent: string; time: number; kind: number; repeat: number }

const edgeKinds: [string, FalcoPriority][] = [
  ['Terminal shell in container', 'notice'],
  ['Read sensitive file untrusted', 'warning'],
  ['Run shell untrusted', 'notice'],
]
const coreKinds = ['iam:AttachRolePolicy', 'iam:CreateAccessKey', 'sts:GetFederationToken', 's3:GetObject']

function toEvents(specs: Spec[]): NormalizedEvent[] {
  const events: NormalizedEvent[] = []
  specs.forEach((s, i) => {
    if (s.repeat > 0 && events.length > 0) {
      events.push(events[s.repeat % events.length] as NormalizedEvent)
      return
    }
    if (s.edge) {
      const [rule, priority] = edgeKinds[s.kind % edgeKinds.length] as [string, FalcoPriority]
      events.push(edgeEvent({ id: `e${i}`, agent: s.agent, time: s.time, rule, priority }))
    } else {
      events.push(
        coreEvent({
          id: `c${i}`,
          agent: s.agent,
          time: s.time,
          action: coreKinds[s.kind % coreKinds.length],
        }),
      )
    }
  })
  return events
}

const rank: Record<FalcoPriority, number> = {
  emergency: 0,
  alert: 1,
  critical: 2,
  error: 3,
  warning: 4,
  notice: 5,
  informational: 6,
  debug: 7,
}
const passes: Record<string, (e: NormalizedEvent) => boolean> = {
  r1: (e) => (e.edge ? true : (e.core?.action ?? '').startsWith('iam:')),
  r2: (e) =>
    e.edge
      ? e.edge.rule.startsWith('Terminal')
      : ['iam:Attach', 'sts:Get'].some((p) => (e.core?.action ?? '').startsWith(p)),
  r3: (e) => (e.edge ? rank[e.edge.priority] <= rank.warning : (e.core?.action ?? '').startsWith('sts:')),
}

function bruteForce(events: NormalizedEvent[]): string[] {
  let st: number | null = null
  const accepted: { e: NormalizedEvent; onTime: RuleConfig[] }[] = []
  const ids = new Set<string>()
  for (const e of events) {
    const usable = rules.filter((r) => passes[r.id]?.(e))
    if (usable.length === 0) {
      st = Math.max(st ?? e.time, e.time)
      continue
    }
    if (ids.has(e.id)) continue
    const w = (r: RuleConfig) => r.window as { before: number; after: number; grace: number }
    const onTime = usable.filter(
      (r) => st === null || st <= e.time + (e.side === 'edge' ? w(r).after : w(r).before) + w(r).grace,
    )
    if (onTime.length === 0) continue
    st = Math.max(st ?? e.time, e.time)
    ids.add(e.id)
    accepted.push({ e, onTime })
  }
  const pairs: string[] = []
  for (const x of accepted.filter((a) => a.e.side === 'edge'))
    for (const y of accepted.filter((a) => a.e.side === 'core'))
      for (const r of x.onTime) {
        const w = r.window as { before: number; after: number }
        if (x.e.agent.id !== y.e.agent.id || !y.onTime.includes(r)) continue
        if (y.e.time >= x.e.time - w.before && y.e.time <= x.e.time + w.after)
          pairs.push(`${r.id}|${x.e.id}|${y.e.id}`)
      }
  return pairs.sort()
}

const spec = fc.record({
  edge: fc.boolean(),
  agent: fc.constantFrom('a', 'b'),
  time: fc.integer({ min: 0, max: 90 }),
  kind: fc.nat(11),
  repeat: fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0), fc.nat(50)),
})

describe('correlator vs brute-force join', () => {
  it('finds exactly the brute-force pairs, each once', () => {
    fc.assert(
      fc.property(fc.array(spec, { maxLength: 80 }), (specs) => {
        const events = toEvents(specs)
        const c = createCorrelator({
          rules,
          window: { before: 0, after: 0, grace: 0 },
          max_events_per_agent: 10_000,
          memory_budget_bytes: 1 << 30,
          incident_gap: 100,
          self_identities: [],
        })
        const emitted = events.flatMap((e) => c.accept(e).correlations)
        const got = emitted.map((x) => `${x.rule.id}|${x.edge.event_id}|${x.core.event_id}`).sort()
        expect(new Set(emitted.map((x) => x.id)).size).toBe(emitted.length)
        expect(got).toEqual(bruteForce(events))
      }),
      { numRuns: 1000 },
    )
  })
})
