// Restarts at random points give the same correlations, byte for byte, as one uninterrupted run: from a full
// snapshot and from checkpoints kept up to date with takeChanges(). Small per-agent caps and a tight memory
// budget make entries leave and their storage be reused, so shedding order and restored order are exercised.
// The behavioural baseline is on, at this test's time scale (ms), with a share small enough to shed agents.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { AgentBaselineRecord } from '../../../correlate/agent-baseline.ts'
import { createCorrelator } from '../../../correlate/correlator.ts'
import type {
  CorrelatorLists,
  CorrelatorState,
  SerializedEntry,
} from '../../../correlate/correlator-state.ts'
import type { CorrelatorConfig, CorrelatorStats } from '../../../correlate/correlator-types.ts'
import type { IncidentRecord } from '../../../correlate/group-incidents.ts'
import type { Correlation, NormalizedEvent, RuleConfig } from '../../../schemas/types.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

const rules: RuleConfig[] = [
  {
    id: 'wide',
    edge: {},
    core: { actions: ['iam:*', 'sts:*'] },
    window: { before: 20, after: 30, grace: 15 },
    severity: 60,
    revoke: true,
  },
  {
    id: 'narrow',
    edge: { rules: ['Terminal*'] },
    core: { actions: ['iam:Attach*'] },
    window: { before: 0, after: 10, grace: 5 },
    severity: 40,
    revoke: false,
  },
]

const config = (budget: number, cap = 3): CorrelatorConfig => ({
  rules,
  window: { before: 0, after: 0, grace: 0 },
  max_events_per_agent: cap,
  memory_budget_bytes: budget,
  incident_gap: 50,
  self_identities: [],
  baseline: {
    enabled: true,
    history: 120,
    warmup: 10,
    routine_min: 2,
    burst_window: 20,
    burst_min: 2,
    memory_bytes: budget > 1 << 20 ? 1 << 20 : 1_500,
  },
})

const spec = fc.record({
  edge: fc.boolean(),
  agent: fc.constantFrom('a', 'b', 'c'),
  time: fc.integer({ min: 0, max: 200 }),
  kind: fc.nat(3),
  repeat: fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0), fc.nat(40)),
})
type Spec = { edge: boolean; agent: string; time: number; kind: number; repeat: number }

const coreKinds = ['iam:AttachRolePolicy', 'iam:CreateAccessKey', 'sts:GetSessionToken', 's3:GetObject']

function toEvents(specs: Spec[], kinds = coreKinds): NormalizedEvent[] {
  const events: NormalizedEvent[] = []
  specs.forEach((s, i) => {
    if (s.repeat > 0 && events.length > 0) {
      events.push(events[s.repeat % events.length] as NormalizedEvent)
      return
    }
    events.push(
      s.edge
        ? edgeEvent({
            id: `e${i}`,
            agent: s.agent,
            time: s.time,
            rule: s.kind % 2 === 0 ? 'Terminal shell in container' : 'Read sensitive file untrusted',
            output: `output of e${i}`,
          })
        : coreEvent({
            id: `c${i}`,
            agent: s.agent,
            time: s.time,
            action: kinds[s.kind],
            target: ['role-a', 'role-b', 'role-c', undefined][(s.time + s.kind) % 4],
          }),
    )
  })
  return events
}

const roundTrip = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T
/** Incidents are checkpointed per agent; a restore lists them by agent. */
const sortedBaseline = (records: Iterable<AgentBaselineRecord>): AgentBaselineRecord[] =>
  roundTrip([...records].sort((a, b) => (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0)))

/**
 * Feeds `events` to one uninterrupted correlator and to two restarted before each index in `cuts`: from a
 * full snapshot, and from checkpoints kept up to date with takeChanges(). All three emit the same.
 */
function expectSameAcrossRestarts(events: NormalizedEvent[], cuts: number[], budget: number, cap?: number) {
  const whole = createCorrelator(config(budget, cap))
  const expected: Correlation[] = events.flatMap((e) => whole.accept(e).correlations)

  let fromSnapshot = createCorrelator(config(budget, cap))
  let fromChanges = createCorrelator(config(budget, cap), undefined, { trackChanges: true })
  const checkpoint = new Map<string, SerializedEntry>()
  const incidents = new Map<string, IncidentRecord[]>()
  let revoked: CorrelatorLists['revoked'] = []
  const baselines = new Map<string, AgentBaselineRecord>()
  const got: Correlation[] = []
  const gotIncremental: Correlation[] = []
  events.forEach((e, i) => {
    if (cuts.includes(i)) {
      fromSnapshot = createCorrelator(config(budget, cap), roundTrip(fromSnapshot.snapshot()))
      const changes = roundTrip(fromChanges.takeChanges())
      for (const id of changes.removed) checkpoint.delete(id)
      for (const entry of changes.added) checkpoint.set(entry.id, entry)
      for (const { agent, incidents: list } of changes.incidents ?? []) {
        if (list.length === 0) incidents.delete(agent)
        else incidents.set(agent, list)
      }
      revoked = changes.revoked ?? revoked
      for (const agent of changes.baseline?.removed ?? []) baselines.delete(agent)
      for (const r of changes.baseline?.upserted ?? []) baselines.set(r.agent, r)
      const state: CorrelatorState = {
        ...changes.meta,
        incidents: [...incidents.keys()].sort().flatMap((agent) => incidents.get(agent) ?? []),
        revoked,
        entries: [...checkpoint.values()].sort((a, b) => a.seq - b.seq),
      }
      if (baselines.size > 0) state.baseline = sortedBaseline(baselines.values())
      const snapshot = fromChanges.snapshot()
      const byAgent = [...snapshot.incidents].sort((a, b) =>
        a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0,
      )
      expect(roundTrip({ ...snapshot, incidents: byAgent, baseline: undefined })).toEqual(
        roundTrip({ ...state, baseline: undefined }),
      )
      expect(sortedBaseline(fromChanges.snapshot().baseline ?? [])).toEqual(state.baseline ?? [])
      fromChanges = createCorrelator(config(budget, cap), state, { trackChanges: true })
    }
    got.push(...fromSnapshot.accept(e).correlations)
    gotIncremental.push(...fromChanges.accept(e).correlations)
  })
  expect(got).toEqual(expected)
  expect(gotIncremental).toEqual(expected)
  // Counters restart at zero with the process; the state they describe does not.
  const state = ({
    stream_time,
    buffered,
    buffered_bytes,
    shared_bytes,
    agents,
    incidents,
    baseline,
  }: CorrelatorStats) => ({
    stream_time,
    buffered,
    buffered_bytes,
    shared_bytes,
    agents,
    incidents,
    baseline: { agents: baseline.agents, bytes: baseline.bytes },
  })
  expect(state(fromSnapshot.stats())).toEqual(state(whole.stats()))
  expect(state(fromChanges.stats())).toEqual(state(whole.stats()))
}

describe('correlator restarts', () => {
  it('leaves out of the checkpoint an entry shed, delivered again and shed again since the last one', () => {
    // Found by the property below (seed 382518182), shrunk: under the memory budget the alert sheds the
    // buffered call, whose redelivery is buffered, pairs again and is shed again before the next checkpoint.
    const call = coreEvent({
      id: 'c0',
      agent: 'a',
      time: 80,
      action: 'iam:AttachRolePolicy',
      target: 'role-a',
    })
    const correlator = createCorrelator(config(4_000), undefined, { trackChanges: true })
    correlator.accept(call)
    const checkpoint = new Map(roundTrip(correlator.takeChanges()).added.map((e) => [e.id, e]))
    correlator.accept(edgeEvent({ id: 'e2', agent: 'a', time: 81, output: 'output of e2' }))
    correlator.accept(call)
    const changes = roundTrip(correlator.takeChanges())
    for (const id of changes.removed) checkpoint.delete(id)
    for (const entry of changes.added) checkpoint.set(entry.id, entry)
    expect([...checkpoint.keys()]).toEqual(['e2'])
    expect([...checkpoint.values()]).toEqual(roundTrip(correlator.snapshot().entries))
  })

  it('keeps the checkpoint equal to the state when thousands of entries come and go between two saves', () => {
    // A save every few thousand records (checkpoint.max_records): most entries a busy agent sends between
    // two saves are shed by its cap or expire before the save, and only what is left is written.
    const correlator = createCorrelator(config(1 << 30), undefined, { trackChanges: true })
    const checkpoint = new Map<string, SerializedEntry>()
    const save = () => {
      const changes = roundTrip(correlator.takeChanges())
      for (const id of changes.removed) checkpoint.delete(id)
      for (const entry of changes.added) checkpoint.set(entry.id, entry)
    }
    const events = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => {
        const n = from + i
        return n % 3 === 0
          ? edgeEvent({ id: `e${n}`, agent: `agent-${n % 7}`, time: n, output: `output of e${n}` })
          : coreEvent({ id: `c${n}`, agent: `agent-${n % 7}`, time: n, action: coreKinds[n % 4] })
      })
    for (const event of events(0, 40)) correlator.accept(event)
    save()
    for (const event of events(40, 5_000)) correlator.accept(event)
    save()
    expect(correlator.stats().buffered).toBeGreaterThan(0)
    expect([...checkpoint.values()]).toEqual(roundTrip(correlator.snapshot().entries))
    for (const event of events(5_040, 30)) correlator.accept(event)
    save()
    expect([...checkpoint.values()]).toEqual(roundTrip(correlator.snapshot().entries))
  })

  it('emits the same correlations across restarts from snapshots and from incremental checkpoints', () => {
    fc.assert(
      fc.property(
        fc.array(spec, { maxLength: 120 }),
        fc.array(fc.nat(120), { maxLength: 4 }),
        fc.constantFrom(1 << 30, 4_000),
        (specs, cuts, budget) => {
          expectSameAcrossRestarts(toEvents(specs), cuts, budget)
        },
      ),
      { numRuns: 400 },
    )
  })

  it('sheds the same buffered calls across restarts when an agent keeps going over its cap', () => {
    // Times close to arrival order, so few events come late and an agent's side stays over a cap of 6
    // between two cuts: its shed order lives on in the uninterrupted run and is built again after a restart.
    // More kinds of call, all usable, so a kind can be down to one entry on a side of six.
    const kinds = [
      'iam:AttachRolePolicy',
      'iam:CreateAccessKey',
      'sts:GetSessionToken',
      'iam:PutRolePolicy',
      'sts:AssumeRole',
      'iam:CreateUser',
    ]
    const closeSpec = fc.record({
      edge: fc.boolean(),
      agent: fc.constantFrom('a', 'b', 'c'),
      jitter: fc.nat(19),
      kind: fc.nat(kinds.length - 1),
      repeat: fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0), fc.nat(40)),
    })
    fc.assert(
      fc.property(
        fc.array(closeSpec, { minLength: 40, maxLength: 160 }),
        fc.array(fc.nat(120), { maxLength: 4 }),
        fc.constantFrom(1 << 30, 4_000),
        (specs, cuts, budget) => {
          const close = specs.map(({ jitter, ...s }, i) => ({ ...s, time: i * 2 + jitter }))
          expectSameAcrossRestarts(toEvents(close, kinds), cuts, budget, 6)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('sheds the oldest call of a kind that has become a repeat, restarted or not', () => {
    // Found by a review's differential run, shrunk: nine calls of one agent, cap 6, times slightly out of
    // order. c0 was the only sts call when the side went over the cap; c6 and c7 make it a repeat that
    // expires first, so it is shed before the iam calls (docs/correlation.md, State bounds), as after a
    // restart. The uninterrupted run still held it as unique and shed c2, then c4 (in the alert's window).
    const actions = [
      'sts:GetSessionToken',
      'iam:AttachRolePolicy',
      'iam:AttachRolePolicy',
      'iam:AttachRolePolicy',
      'iam:CreateAccessKey',
      'iam:CreateAccessKey',
      'sts:GetSessionToken',
      'sts:GetSessionToken',
      'iam:CreateAccessKey',
    ]
    const times = [42, 46, 73, 83, 80, 81, 102, 97, 103]
    const events = [
      ...times.map((time, i) => coreEvent({ id: `c${i}`, agent: 'a', time, action: actions[i] })),
      edgeEvent({ id: 'e', agent: 'a', time: 97, output: 'sh -c curl 169.254.169.254' }),
    ]
    const paired = (correlations: Correlation[]) =>
      correlations.filter((c) => c.rule.id === 'wide').map((c) => c.core.event_id)
    const whole = createCorrelator(config(1 << 30, 6))
    expect(paired(events.flatMap((e) => whole.accept(e).correlations))).toEqual([
      'c3',
      'c4',
      'c5',
      'c6',
      'c7',
      'c8',
    ])
    expectSameAcrossRestarts(events, [7], 1 << 30, 6)
  })
})
