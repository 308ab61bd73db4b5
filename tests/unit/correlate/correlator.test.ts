import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createCorrelator } from '../../../correlate/correlator.ts'
import type { CorrelatorConfig } from '../../../correlate/correlator-types.ts'
import type { RuleConfig } from '../../../schemas/types.ts'
import { anyThenIam, coreEvent, edgeEvent } from './sample-events.ts'

const B = 60_000
const A = 600_000
const G = 300_000
const T0 = Date.UTC(2024, 7, 1, 13, 30)

const rule = anyThenIam

const config = (over: Partial<CorrelatorConfig> = {}): CorrelatorConfig => ({
  rules: [rule],
  window: { before: B, after: A, grace: G },
  max_events_per_agent: 1000,
  memory_budget_bytes: 256 * 1024 * 1024,
  incident_gap: 1_800_000,
  self_identities: ['arn:aws:iam::609418236337:role/nerve-revoker'],
  ...over,
})

/** A no-rule CloudTrail event of another agent: only moves stream time. */
const tick = (time: number) =>
  coreEvent({ id: `tick-${time}`, time, agent: 'clock', action: 's3:GetObject', readOnly: true })

describe('window W1 (inclusive bounds)', () => {
  it.each([
    ['exactly before', -B, 1],
    ['one ms beyond before', -B - 1, 0],
    ['same time', 0, 1],
    ['exactly after', A, 1],
    ['one ms beyond after', A + 1, 0],
  ])('core %s the edge', (_name, offset, expected) => {
    const c = createCorrelator(config())
    c.accept(edgeEvent({ time: T0 }))
    expect(c.accept(coreEvent({ time: T0 + offset })).correlations).toHaveLength(expected)
  })

  it('matches in either arrival order, with delta_ms = core − edge and time = max', () => {
    const c = createCorrelator(config())
    c.accept(coreEvent({ time: T0 - 30_000 }))
    const [found] = c.accept(edgeEvent({ time: T0 })).correlations
    expect(found?.delta_ms).toBe(-30_000)
    expect(found?.time).toBe(T0)
  })
})

describe('lateness L1', () => {
  it('accepts an out-of-order edge within grace and joins it', () => {
    const c = createCorrelator(config())
    c.accept(coreEvent({ time: T0 + 10_000 }))
    c.accept(tick(T0 + A + G))
    const result = c.accept(edgeEvent({ time: T0 }))
    expect(result.late).toBeUndefined()
    expect(result.correlations).toHaveLength(1)
  })

  it('an edge is late one ms beyond time + after + grace, on time at equality', () => {
    const c = createCorrelator(config())
    c.accept(tick(T0 + A + G))
    expect(c.accept(edgeEvent({ id: 'e-eq', time: T0 })).late).toBeUndefined()
    c.accept(tick(T0 + A + G + 1))
    const result = c.accept(edgeEvent({ id: 'e-late', time: T0 }))
    expect(result.late).toMatchObject({ stream_time: T0 + A + G + 1, lag_ms: 1 })
    expect(c.stats().late.edge).toBe(1)
  })

  it('a core is late one ms beyond time + before + grace (asymmetric span)', () => {
    const c = createCorrelator(config())
    c.accept(tick(T0 + B + G))
    expect(c.accept(coreEvent({ id: 'c-eq', time: T0 })).late).toBeUndefined()
    c.accept(tick(T0 + B + G + 1))
    const result = c.accept(coreEvent({ id: 'c-late', time: T0 }))
    expect(result.late?.lag_ms).toBe(1)
    expect(c.stats().late.core).toBe(1)
  })

  it('a late event is neither matched nor buffered', () => {
    const c = createCorrelator(config())
    c.accept(edgeEvent({ time: T0 + A + G + 1 }))
    const late = c.accept(coreEvent({ time: T0 }))
    expect(late.late).toBeDefined()
    expect(late.correlations).toHaveLength(0)
    expect(c.stats().buffered).toBe(1)
  })

  it('stream time moves only with data and never for keyless events', () => {
    const c = createCorrelator(config())
    expect(c.streamTime()).toBeNull()
    expect(
      c.accept({ ...edgeEvent({ time: T0 + 10 ** 9 }), agent: { id: '', resolved_by: 'unresolved' } })
        .ignored,
    ).toBe('no_agent')
    expect(c.streamTime()).toBeNull()
    c.accept(tick(T0))
    expect(c.streamTime()).toBe(T0)
  })
})

describe('retention S1 never loses a pair', () => {
  it('keeps an edge while ST = edge + B + A + G, so the latest on-time core still joins', () => {
    const c = createCorrelator(config())
    c.accept(edgeEvent({ time: T0 }))
    c.accept(tick(T0 + B + A + G))
    expect(c.stats().buffered).toBe(1)
    expect(c.accept(coreEvent({ time: T0 + A })).correlations).toHaveLength(1)
    c.accept(tick(T0 + B + A + G + 1))
    expect(c.stats().buffered).toBe(1) // only the core (time T0 + A) is left
  })

  it('keeps a core while ST = core + B + A + G, so the latest on-time edge still joins', () => {
    const c = createCorrelator(config())
    c.accept(coreEvent({ time: T0 }))
    c.accept(tick(T0 + B + A + G))
    expect(c.accept(edgeEvent({ time: T0 + B })).correlations).toHaveLength(1)
  })
})

describe('dedup D1 and identity I1', () => {
  it('the first delivery wins; redeliveries are duplicates and emit nothing', () => {
    const c = createCorrelator(config())
    c.accept(edgeEvent({ id: 'e1', time: T0 }))
    expect(c.accept(coreEvent({ id: 'c1', time: T0 + 1 })).correlations).toHaveLength(1)
    expect(c.accept(edgeEvent({ id: 'e1', time: T0 })).duplicate).toBe(true)
    expect(c.accept(coreEvent({ id: 'c1', time: T0 + 1 })).duplicate).toBe(true)
    expect(c.accept(edgeEvent({ id: 'e1', time: T0 + 5, rule: 'Other' })).duplicate).toBe(true)
    expect(c.stats()).toMatchObject({ duplicate: 3, correlations: 1 })
  })

  it('correlation id = sha256(rule id 0x1f edge id 0x1f core id)', () => {
    const c = createCorrelator(config())
    c.accept(edgeEvent({ id: 'e1', time: T0 }))
    const [found] = c.accept(coreEvent({ id: 'c1', time: T0 })).correlations
    const expected = createHash('sha256').update('any-then-iam\u001fe1\u001fc1').digest('hex')
    expect(found?.id).toBe(expected)
  })
})

describe('multiplicity M1 and keys K1', () => {
  it('emits every matching pair once, many-to-many', () => {
    const c = createCorrelator(config())
    const ids: string[] = []
    for (const [i, t] of [0, 10, 20].entries())
      ids.push(...c.accept(coreEvent({ id: `c${i}`, time: T0 + t })).correlations.map((x) => x.id))
    for (const [i, t] of [5, 15].entries())
      ids.push(...c.accept(edgeEvent({ id: `e${i}`, time: T0 + t })).correlations.map((x) => x.id))
    expect(ids).toHaveLength(6)
    expect(new Set(ids).size).toBe(6)
  })

  it.each([['Data-Cleaner'], ['data-cleaner '], ['data-cleaner\u200b']])(
    'never joins key %j to data-cleaner',
    (other) => {
      const c = createCorrelator(config())
      c.accept(edgeEvent({ time: T0 }))
      expect(c.accept(coreEvent({ time: T0, agent: other })).correlations).toHaveLength(0)
    },
  )
})

describe('what is never correlated', () => {
  it('Falco internal events are ignored and do not move stream time', () => {
    const c = createCorrelator(config())
    expect(
      c.accept(edgeEvent({ time: T0, rule: 'Falco internal: metrics snapshot', internal: true })).ignored,
    ).toBe('internal')
    expect(c.streamTime()).toBeNull()
  })

  it('events no rule can use are not buffered', () => {
    const c = createCorrelator(config())
    expect(c.accept(coreEvent({ time: T0, action: 's3:GetObject' })).ignored).toBe('no_rule')
    expect(c.stats().buffered).toBe(0)
  })

  it.each([
    ['tagged by_nerve', { byNerve: true }],
    ['by a self identity as principal', { principal: 'arn:aws:iam::609418236337:role/nerve-revoker' }],
    [
      'by a session of a self identity',
      {
        principal: 'arn:aws:sts::609418236337:assumed-role/nerve-revoker/revoke-abc',
        sessionIssuer: 'arn:aws:iam::609418236337:role/nerve-revoker',
      },
    ],
  ])('CloudTrail records %s are ignored', (_name, over) => {
    const c = createCorrelator(config())
    c.accept(edgeEvent({ time: T0 }))
    const result = c.accept(coreEvent({ time: T0 + 1, ...over }))
    expect(result).toMatchObject({ ignored: 'self_action', correlations: [] })
  })
})

describe('bounded state', () => {
  it('sheds the oldest entry past the per-agent cap and counts it', () => {
    const c = createCorrelator(config({ max_events_per_agent: 2 }))
    for (let i = 0; i < 3; i++) c.accept(edgeEvent({ id: `e${i}`, time: T0 + i }))
    expect(c.stats()).toMatchObject({ buffered: 2, overflow: { agent_cap: 1, memory_budget: 0 } })
    expect(c.accept(coreEvent({ time: T0 + 5 })).correlations.map((x) => x.edge.event_id)).toEqual([
      'e1',
      'e2',
    ])
  })

  it('sheds past the memory budget and counts it', () => {
    const c = createCorrelator(config({ memory_budget_bytes: 2_000 }))
    for (let i = 0; i < 10; i++) c.accept(edgeEvent({ id: `e${i}`, time: T0 + i, agent: `agent-${i}` }))
    const stats = c.stats()
    expect(stats.overflow.memory_budget).toBeGreaterThan(0)
    expect(stats.buffered_bytes).toBeLessThanOrEqual(2_000)
    expect(stats.buffered + stats.overflow.memory_budget).toBe(10)
  })
})

describe('per-rule windows', () => {
  const narrow: RuleConfig = { ...rule, id: 'narrow', window: { before: 0, after: 1_000, grace: 0 } }
  const wide: RuleConfig = { ...rule, id: 'wide', window: { before: B, after: A, grace: G } }

  it('an event late for one rule is still matched under the rules it is on time for', () => {
    const c = createCorrelator(config({ rules: [narrow, wide] }))
    c.accept(coreEvent({ time: T0 + 500 }))
    c.accept(tick(T0 + 5_000))
    const result = c.accept(edgeEvent({ time: T0 }))
    expect(result.late).toBeUndefined()
    expect(result.correlations.map((x) => x.rule.id)).toEqual(['wide'])
  })

  it('each rule uses its own window', () => {
    const c = createCorrelator(config({ rules: [narrow, wide] }))
    c.accept(edgeEvent({ time: T0 }))
    expect(
      c.accept(coreEvent({ id: 'c-near', time: T0 + 1_000 })).correlations.map((x) => x.rule.id),
    ).toEqual(['narrow', 'wide'])
    expect(c.accept(coreEvent({ id: 'c-far', time: T0 + 1_001 })).correlations.map((x) => x.rule.id)).toEqual(
      ['wide'],
    )
  })
})

describe('snapshot and restore', () => {
  it('a restored correlator continues exactly like an uninterrupted one', () => {
    const events = [
      edgeEvent({ id: 'e1', time: T0 }),
      coreEvent({ id: 'c1', time: T0 + 1_000 }),
      edgeEvent({ id: 'e2', time: T0 + 2_000, agent: 'other' }),
      coreEvent({ id: 'c2', time: T0 + 3_000 }),
      edgeEvent({ id: 'e3', time: T0 + 4_000 }),
      coreEvent({ id: 'c3', time: T0 + 5_000, agent: 'other' }),
      edgeEvent({ id: 'e1', time: T0 }),
    ]
    const straight = createCorrelator(config())
    const expected = events.map((e) => straight.accept(e))
    for (let cut = 0; cut <= events.length; cut++) {
      const first = createCorrelator(config())
      const before = events.slice(0, cut).map((e) => first.accept(e))
      const state = JSON.parse(JSON.stringify(first.snapshot()))
      const second = createCorrelator(config(), state)
      const after = events.slice(cut).map((e) => second.accept(e))
      expect(JSON.stringify([...before, ...after])).toBe(JSON.stringify(expected))
    }
  })
})
