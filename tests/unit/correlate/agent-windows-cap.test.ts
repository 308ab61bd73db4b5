// The per-agent cap sheds, from the side that went over it, the entry that would expire first (earliest
// expiry, then earliest seq), never the entry just added. The buffers keep that order in a heap built
// once a side is over the cap (shed-order.ts); this checks them against a plain list that scans for the
// entry to shed, over random arrivals: ties, out-of-order expiries, expiry sweeps between arrivals and
// sides that fall below the cap and go over it again.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createAgentWindows } from '../../../correlate/agent-windows.ts'
import type { CoreDetail, EdgeDetail } from '../../../correlate/entry-slots.ts'

type Entry = { id: string; agent: string; edge: boolean; expiry: number; seq: number }

const edgeDetail: EdgeDetail = {
  side: 'edge',
  rule: 'Terminal shell in container',
  priority: 'notice',
  source: 'syscall',
  hostname: 'ip-10-0-1-17',
  tags: ['container', 'shell'],
}
const coreDetail: CoreDetail = {
  side: 'core',
  action: 'iam:AttachRolePolicy',
  principal: 'arn:aws:iam::1:role/a',
}

/** The reference: every entry in a list; the cap scans the agent's side for the entry to shed. */
function shedByScan(cap: number) {
  let live: Entry[] = []
  const first = (a: Entry, b: Entry) => a.expiry < b.expiry || (a.expiry === b.expiry && a.seq < b.seq)
  return {
    insert(entry: Entry) {
      live.push(entry)
      const side = live.filter((e) => e.agent === entry.agent && e.edge === entry.edge)
      if (side.length > cap) {
        const oldest = side.filter((e) => e !== entry).reduce((a, b) => (first(b, a) ? b : a))
        live = live.filter((e) => e !== oldest)
      }
    },
    evictExpired(streamTime: number) {
      live = live.filter((e) => e.expiry >= streamTime)
    },
    ids: () => live.map((e) => e.id).sort(),
  }
}

// Few expiry values, so ties are common; sweeps are rarer than arrivals and evict a few entries each.
const step = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      agent: fc.constantFrom('shop-api', 'billing', 'batch'),
      edge: fc.boolean(),
      expiry: fc.integer({ min: 0, max: 10 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ sweep: fc.integer({ min: 0, max: 3 }) }) },
)

describe('per-agent cap', () => {
  it('sheds the same entries as a scan of the side', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(step, { maxLength: 120 }), (cap, steps) => {
        const windows = createAgentWindows({ maxPerAgentSide: cap, memoryBudgetBytes: 1 << 30 })
        const reference = shedByScan(cap)
        let seq = 0
        for (const s of steps) {
          if ('sweep' in s) {
            windows.evictExpired(s.sweep)
            reference.evictExpired(s.sweep)
          } else {
            const entry = { ...s, id: `event-${seq}`, seq: seq++ }
            const w = windows.window(entry.agent)
            const who = windows.who(w, 'principal', { principal_arn: `arn:aws:iam::1:role/${entry.agent}` })
            const detail = entry.edge ? edgeDetail : coreDetail
            const slot = windows.insert(who, detail, entry.id, 0, 1, entry.expiry, entry.seq, 0, 'sh -i')
            windows.settle(slot)
            reference.insert(entry)
          }
          const ids = windows.liveSlots().map((slot) => windows.slots.id(slot))
          expect(ids.sort()).toEqual(reference.ids())
        }
      }),
      { numRuns: 500 },
    )
  })

  it('sheds the same entries as a scan over long runs with stream time moving on', () => {
    // Expiries a little after the current time, so sides go over the cap, fall back under it as entries
    // expire, and go over again: the shed order is built, kept with entries expiring inside it, rebuilt.
    const move = fc.oneof(
      { weight: 3, arbitrary: fc.record({ agent: fc.constantFrom('shop-api', 'billing'), in: fc.nat(6) }) },
      { weight: 2, arbitrary: fc.record({ advance: fc.nat(2) }) },
    )
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 5 }),
        fc.array(move, { minLength: 200, maxLength: 400 }),
        (cap, moves) => {
          const windows = createAgentWindows({ maxPerAgentSide: cap, memoryBudgetBytes: 1 << 30 })
          const reference = shedByScan(cap)
          let now = 0
          let seq = 0
          for (const m of moves) {
            if ('advance' in m) {
              now += m.advance
              windows.evictExpired(now)
              reference.evictExpired(now)
              continue
            }
            const entry = { agent: m.agent, edge: false, expiry: now + m.in, id: `event-${seq}`, seq: seq++ }
            const who = windows.who(windows.window(entry.agent), 'principal', {
              principal_arn: `arn:aws:iam::1:role/${entry.agent}`,
            })
            windows.settle(windows.insert(who, coreDetail, entry.id, 0, 1, entry.expiry, entry.seq, 0, ''))
            reference.insert(entry)
            expect(
              windows
                .liveSlots()
                .map((slot) => windows.slots.id(slot))
                .sort(),
            ).toEqual(reference.ids())
          }
        },
      ),
      { numRuns: 100 },
    )
  })

  it('sheds repeats before the only entry of its kind, as a scan of the side counting kinds would', () => {
    // The documented order (docs/threat-model.md, evicting its own alert with a flood): counting the
    // newcomer, entries whose kind has two or more on the side go first, each by expiry; an entry that is
    // the only one of its kind only once no repeats remain. Kinds come and go while the heap lives on: an
    // entry queued as the only one of its kind becomes a repeat when a second comes, and the reverse.
    const actions = ['iam:AttachRolePolicy', 'sts:GetSessionToken', 's3:GetObject']
    const move = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.nat(actions.length - 1), in: fc.nat(8) }) },
      { weight: 1, arbitrary: fc.record({ advance: fc.nat(2) }) },
    )
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 6 }),
        fc.array(move, { minLength: 50, maxLength: 300 }),
        (cap, moves) => {
          const windows = createAgentWindows({ maxPerAgentSide: cap, memoryBudgetBytes: 1 << 30 })
          const who = windows.who(windows.window('shop-api'), 'principal', {
            principal_arn: 'arn:aws:iam::1:role/a',
          })
          type Kinded = { id: string; kind: number; expiry: number; seq: number }
          let live: Kinded[] = []
          const first = (a: Kinded, b: Kinded) =>
            a.expiry < b.expiry || (a.expiry === b.expiry && a.seq < b.seq)
          let now = 0
          let seq = 0
          for (const m of moves) {
            if ('advance' in m) {
              now += m.advance
              windows.evictExpired(now)
              live = live.filter((e) => e.expiry >= now)
              continue
            }
            const entry = { id: `event-${seq}`, kind: m.kind, expiry: now + m.in, seq: seq++ }
            const detail = { ...coreDetail, action: actions[m.kind] as string }
            windows.settle(windows.insert(who, detail, entry.id, 0, 1, entry.expiry, entry.seq, 0, ''))
            live.push(entry)
            if (live.length > cap) {
              const others = live.filter((e) => e !== entry)
              const repeats = others.filter((e) => live.filter((x) => x.kind === e.kind).length > 1)
              const pool = repeats.length > 0 ? repeats : others
              const victim = pool.reduce((a, b) => (first(b, a) ? b : a))
              live = live.filter((e) => e !== victim)
            }
            expect(
              windows
                .liveSlots()
                .map((slot) => windows.slots.id(slot))
                .sort(),
            ).toEqual(live.map((e) => e.id).sort())
          }
        },
      ),
      { numRuns: 200 },
    )
  })

  it('sheds the right entry after a stretch under the cap, its entries expiring while queued', () => {
    // Every stretch length from 0 to 40 rounds, so one of them ends just after the shed order was rebuilt.
    for (let rounds = 0; rounds <= 40; rounds++) {
      const cap = 4
      const windows = createAgentWindows({ maxPerAgentSide: cap, memoryBudgetBytes: 1 << 30 })
      const reference = shedByScan(cap)
      const who = windows.who(windows.window('shop-api'), 'principal', {
        principal_arn: 'arn:aws:iam::1:role/a',
      })
      let seq = 0
      const add = (expiry: number) => {
        const entry = { id: `event-${seq}`, agent: 'shop-api', edge: false, expiry, seq: seq++ }
        windows.settle(windows.insert(who, coreDetail, entry.id, 0, 1, entry.expiry, entry.seq, 0, ''))
        reference.insert(entry)
      }
      const sweep = (t: number) => {
        windows.evictExpired(t)
        reference.evictExpired(t)
      }
      for (let i = 0; i < 5; i++) add(100 + i) // over the cap once: the side gets its shed order
      sweep(103) // two left: the shed order stays (it goes below half the cap)
      // One entry in, one out: two or three entries, never over the cap; each that expires stays queued.
      for (let t = 103; t < 103 + rounds; t++) {
        add(t + 2)
        sweep(t + 1)
      }
      for (const expiry of [150, 120, 160, 130]) add(expiry) // over the cap again, twice
      const ids = windows.liveSlots().map((slot) => windows.slots.id(slot))
      expect(ids.sort(), `after ${rounds} rounds`).toEqual(reference.ids())
      expect(windows.overflow.agent_cap).toBe(3)
    }
  })

  it('never sheds an entry that took the slot of one that expired while queued to be shed', () => {
    const windows = createAgentWindows({ maxPerAgentSide: 2, memoryBudgetBytes: 1 << 30 })
    const whoOf = (agent: string) =>
      windows.who(windows.window(agent), 'principal', { principal_arn: `arn:aws:iam::1:role/${agent}` })
    let seq = 0
    const add = (agent: string, expiry: number) => {
      const id = `${agent}-${seq}`
      windows.settle(windows.insert(whoOf(agent), coreDetail, id, 0, 1, expiry, seq++, 0, ''))
    }
    add('shop-api', 10)
    add('shop-api', 20)
    add('shop-api', 30) // over the cap: shop-api-0 is shed and the side's shed order is built
    windows.evictExpired(21) // shop-api-1 expires; its slot is free, its place in the shed order stale
    add('billing', 40) // reuses a freed slot
    add('shop-api', 50)
    add('shop-api', 60) // over the cap again: shop-api-2 expires first of what is left
    const ids = windows.liveSlots().map((slot) => windows.slots.id(slot))
    expect(ids).toEqual(['billing-3', 'shop-api-4', 'shop-api-5'])
  })

  it('counts every shed entry as agent_cap overflow', () => {
    const windows = createAgentWindows({ maxPerAgentSide: 3, memoryBudgetBytes: 1 << 30 })
    const who = windows.who(windows.window('shop-api'), 'principal', {
      principal_arn: 'arn:aws:iam::1:role/a',
    })
    for (let seq = 0; seq < 10; seq++) {
      windows.settle(windows.insert(who, coreDetail, `event-${seq}`, 0, 1, 100 - seq, seq, 0, ''))
    }
    // Later arrivals expire earlier here, so the cap keeps the last arrival and the two latest expiries.
    expect(windows.liveSlots().map((slot) => windows.slots.id(slot))).toEqual([
      'event-0',
      'event-1',
      'event-9',
    ])
    expect(windows.overflow).toEqual({ agent_cap: 7, memory_budget: 0 })
  })
})

// The attack: a shell alert, then 1,500 "Read sensitive file untrusted" alerts of the same pod (a
// `cat /etc/shadow` loop), then AttachRolePolicy. Shedding the oldest would evict the shell alert, the one
// that matters; repeats go first, so the shell alert is still there to pair.
describe('a flood of one alert does not evict a rarer one', () => {
  it('keeps the shell alert through 1,500 sensitive-file reads and correlates it with AttachRolePolicy', async () => {
    const { createCorrelator } = await import('../../../correlate/correlator.ts')
    const { builtinRules } = await import('../../../correlate/builtin-rules.ts')
    const { edgeEvent, coreEvent } = await import('./sample-events.ts')
    const c = createCorrelator({
      rules: builtinRules,
      window: { before: 120_000, after: 900_000, grace: 1_200_000 },
      max_events_per_agent: 1000,
      memory_budget_bytes: 1 << 28,
      incident_gap: 1_800_000,
      self_identities: [],
    })
    const t0 = Date.UTC(2024, 7, 1, 13, 30)
    c.accept(edgeEvent({ id: 'shell', time: t0 }))
    const floods: number[] = []
    for (let i = 0; i < 1500; i++) {
      const result = c.accept(
        edgeEvent({
          id: `shadow-${i}`,
          time: t0 + 100 + i * 10,
          rule: 'Read sensitive file untrusted',
          priority: 'warning',
          tags: ['T1555', 'container', 'filesystem', 'maturity_stable', 'mitre_credential_access'],
          output: `Warning Sensitive file opened for reading by non-trusted program (file=/etc/shadow command=cat /etc/shadow n=${i})`,
        }),
      )
      if (result.flood) floods.push(i)
    }
    expect(c.stats().overflow.agent_cap).toBe(501)
    // The flood is itself a signal: the event that put the agent over its cap says so, once.
    expect(floods).toEqual([999])
    expect(c.stats().floods).toBe(1)
    const { correlations } = c.accept(coreEvent({ id: 'attach', time: t0 + 60_000 }))
    const shell = correlations.filter((x) => x.edge.event_id === 'shell')
    expect(shell.map((x) => x.rule.id)).toContain('shell-then-iam-privilege-change')
  })

  it('turns the flood into an alert rules can name: "nerve: Alert flood"', async () => {
    const { createCorrelator, floodRuleName } = await import('../../../correlate/correlator.ts')
    const { edgeEvent, coreEvent } = await import('./sample-events.ts')
    const c = createCorrelator({
      rules: [
        {
          id: 'reads-then-s3',
          edge: { rules: ['Read sensitive*'] },
          core: { actions: ['s3:*'] },
          severity: 50,
          revoke: false,
        },
        {
          id: 'flood-then-iam',
          edge: { rules: [floodRuleName] },
          core: { actions: ['iam:*'] },
          severity: 70,
          revoke: false,
        },
      ],
      window: { before: 120_000, after: 900_000, grace: 1_200_000 },
      max_events_per_agent: 50,
      memory_budget_bytes: 1 << 28,
      incident_gap: 1_800_000,
      self_identities: [],
    })
    const t0 = Date.UTC(2024, 7, 1, 13, 30)
    for (let i = 0; i < 80; i++)
      c.accept(
        edgeEvent({
          id: `shadow-${i}`,
          time: t0 + i,
          rule: 'Read sensitive file untrusted',
          priority: 'warning',
          // Different files, so the alerts are no repeats to collapse (collapse-repeats.test.ts).
          output: `Warning Sensitive file opened for reading by non-trusted program (file=/etc/shadow-${i})`,
        }),
      )
    const { correlations } = c.accept(coreEvent({ id: 'attach', time: t0 + 60_000 }))
    expect(correlations.map((x) => [x.rule.id, x.edge.rule, x.edge.event_id, x.edge.source])).toEqual([
      ['flood-then-iam', floodRuleName, 'flood-shadow-50', 'nerve'],
    ])
    expect(correlations[0]?.edge.output).toContain('Read sensitive file untrusted')
  })

  it('sheds a unique entry only once no repeats remain', () => {
    const w = createAgentWindows({ maxPerAgentSide: 3, memoryBudgetBytes: 1 << 30 })
    const a = w.window('agent')
    const who = w.who(a, 'registry', {})
    const put = (id: string, rule: string, expiry: number, seq: number) => {
      const slot = w.insert(who, { ...edgeDetail, rule }, id, expiry, 1, expiry, seq, 0, 'out')
      w.settle(slot)
    }
    put('rare', 'Terminal shell in container', 10, 1)
    put('r1', 'Read sensitive file untrusted', 11, 2)
    put('r2', 'Read sensitive file untrusted', 12, 3)
    put('r3', 'Read sensitive file untrusted', 13, 4)
    put('other', 'Netcat Remote Code Execution in Container', 14, 5)
    const ids = () => w.liveSlots().map((slot) => w.slots.id(slot))
    expect(ids()).toEqual(['rare', 'r3', 'other'])
    put('another', 'Find AWS Credentials', 15, 6)
    // r3 is now unique too: with no repeats left, the one that expires first goes.
    expect(ids()).toEqual(['r3', 'other', 'another'])
  })
})

// The attack: alerts whose every descriptive field differs (64 tags of 128 characters each, the schema's
// caps) cost far more than the fixed per-entry estimate. Every byte an event holds counts toward the
// memory budget, so the budget binds on what is really held.
describe('byte accounting', () => {
  it('counts the tags, rule and identity an entry holds, once per shared value, and releases them', async () => {
    const { createCorrelator } = await import('../../../correlate/correlator.ts')
    const { edgeEvent } = await import('./sample-events.ts')
    const budget = 1 << 20
    const withBudget = () =>
      createCorrelator({
        rules: [{ id: 'any', edge: {}, core: {}, severity: 50, revoke: false }],
        window: { before: 120_000, after: 900_000, grace: 1_200_000 },
        max_events_per_agent: 100_000,
        memory_budget_bytes: budget,
        incident_gap: 1_800_000,
        self_identities: [],
      })
    const c = withBudget()
    const t0 = Date.UTC(2024, 7, 1, 13, 30)
    const heavyTags = (i: number) => Array.from({ length: 64 }, (_, k) => `${i}-${k}-`.padEnd(128, 'x'))
    for (let i = 0; i < 200; i++) c.accept(edgeEvent({ id: `heavy-${i}`, time: t0 + i, tags: heavyTags(i) }))
    const stats = c.stats()
    // 64 × (8 + 32 + 256) bytes of tags alone per entry: the budget holds well under 200 of them.
    expect(stats.buffered).toBeLessThan(60)
    expect(stats.overflow.memory_budget).toBeGreaterThan(140)
    expect(stats.buffered_bytes).toBeLessThanOrEqual(budget)
    // The same alert repeated (on other files, so not collapsed) shares its detail: counted once, not per entry.
    const light = withBudget()
    const tags = heavyTags(0)
    for (let i = 0; i < 200; i++)
      light.accept(edgeEvent({ id: `same-${i}`, time: t0 + i, tags, output: `file=/etc/shadow-${i}` }))
    expect(light.stats()).toMatchObject({ buffered: 200, overflow: { memory_budget: 0 } })
  })
})
