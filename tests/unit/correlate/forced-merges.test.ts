// The watched agent sets the stream time of a quiet partition with its own alert times, so it can
// alternate an incident more than the gap after its last one and a correlation bridging the two: each
// bridge merged the new incident into the old, was emitted whatever the per-rule bound, and made the
// store's fold read every stored correlation of the growing incident again. 1,000 bridges from 4,000
// events cost the store writer 14 s of CPU, four times as much per doubling. Events shaped as ingest makes
// them from the Falco website's shell alert and a Stratus Red Team AttachRolePolicy call (sample-events.ts).
import { afterEach, describe, expect, it } from 'vitest'
import { createCorrelator } from '../../../correlate/correlator.ts'
import { createIncidentGrouper, maxMerges } from '../../../correlate/group-incidents.ts'
import type { Correlation } from '../../../schemas/types.ts'
import { closeStores, openStore } from '../sinks/store-harness.ts'
import { anyThenIam, coreEvent, edgeEvent } from './sample-events.ts'

const minute = 60_000
const gap = 30 * minute
const T0 = Date.UTC(2026, 0, 1)
const rule = anyThenIam

/** `cycles` times: a pair more than the gap after the last, then a pair between the two. */
function attack(cycles: number): Correlation[] {
  const c = createCorrelator({
    rules: [rule],
    window: { before: 2 * minute, after: 15 * minute, grace: 20 * minute },
    max_events_per_agent: 1000,
    memory_budget_bytes: 64 * 1024 * 1024,
    incident_gap: gap,
    self_identities: [],
  })
  const pair = (id: string, at: number) => [
    ...c.accept(edgeEvent({ id: `e-${id}`, time: at })).correlations,
    ...c.accept(coreEvent({ id: `c-${id}`, time: at + 1000 })).correlations,
  ]
  const out = pair('first', T0)
  let end = T0 + 1000
  for (let i = 0; i < cycles; i++) {
    const next = end + gap + minute
    out.push(...pair(`new-${i}`, next), ...pair(`bridge-${i}`, end + gap / 2))
    end = next + 1000
  }
  return out
}

afterEach(closeStores)

describe('merges forced by bridging a new incident to the last, again and again', () => {
  it('merges at most maxMerges incidents into one, so the store folds each a bounded number of times', () => {
    const correlations = attack(200)
    const merging = correlations.filter((c) => c.incident.merged)
    // Each incident absorbs at most maxMerges others: the store reads it again at most that often.
    const folds = new Map<string, number>()
    for (const c of merging) folds.set(c.incident.id, (folds.get(c.incident.id) ?? 0) + 1)
    expect(Math.max(...folds.values())).toBeLessThanOrEqual(maxMerges)
    expect(merging.length).toBeGreaterThan(maxMerges)

    // The store ends with the incidents the correlations name, each holding exactly its correlations.
    const { store } = openStore()
    for (const c of correlations) store.writeCorrelations([JSON.stringify(c)])
    const final = new Map<string, string>()
    const parent = new Map<string, string>()
    for (const c of correlations) for (const old of c.incident.merged ?? []) parent.set(old, c.incident.id)
    const find = (id: string): string => (parent.has(id) ? find(parent.get(id) as string) : id)
    for (const c of correlations) final.set(c.id, find(c.incident.id))
    const incidents = store.incidents({ limit: 1000, text: {} })
    expect(incidents.map((i) => i.id).sort()).toEqual([...new Set(final.values())].sort())
    for (const incident of incidents) {
      const held = store.incident(incident.id)?.correlations.map((c) => c.id) ?? []
      const expected = [...final].filter(([, id]) => id === incident.id).map(([c]) => c)
      expect(held.sort()).toEqual(expected.sort())
      expect(incident.correlations).toBe(expected.length)
    }
  })

  it('joins a correlation near a full incident and another to the earliest, and keeps the count in checkpoints', () => {
    const g = createIncidentGrouper(gap)
    const first = g.assign('agent', T0, 'c-0', [])
    let end = T0
    for (let i = 1; i <= maxMerges; i++) {
      g.assign('agent', end + gap + minute, `n-${i}`, [])
      expect(g.assign('agent', end + gap / 2, `b-${i}`, [])).toMatchObject({
        id: first.id,
        merged: [expect.any(String)],
      })
      end += gap + minute
    }
    expect(g.snapshot()).toEqual([expect.objectContaining({ id: first.id, merges: maxMerges })])
    const restored = createIncidentGrouper(gap, JSON.parse(JSON.stringify(g.snapshot())))
    for (const grouper of [g, restored]) {
      const apart = grouper.assign('agent', end + gap + minute, 'n-last', [])
      const bridge = grouper.assign('agent', end + gap / 2, 'b-last', [])
      expect(bridge.id).toBe(first.id)
      expect(bridge.merged).toBeUndefined()
      expect(grouper.size()).toBe(2)
      expect(grouper.assign('agent', end + 2 * gap + minute, 'n-after', []).id).toBe(apart.id)
    }
    expect(JSON.stringify(restored.snapshot())).toBe(JSON.stringify(g.snapshot()))
  })
})
