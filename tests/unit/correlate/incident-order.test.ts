// Incidents do not depend on arrival order: the same correlations, arriving in event-time order or in a
// live order (CloudTrail minutes late, alerts out of order), end in the same incidents with the same ids,
// once the ids each correlation says it replaces (`incident.merged`) are folded in. A correlation within
// the gap of two incidents merges them.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createIncidentGrouper, maxRenames } from '../../../correlate/group-incidents.ts'
import { replayCorrelations } from '../../../correlate/replay-correlations.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Correlation, NormalizedEvent } from '../../../schemas/types.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const minute = 60_000
const gap = 30 * minute

/** Final incident id per correlation id, following the merges the records announce. */
function finalIncidents(correlations: readonly Correlation[]): Map<string, string> {
  const parent = new Map<string, string>()
  const find = (id: string): string => {
    let at = id
    while (parent.has(at)) at = parent.get(at) as string
    return at
  }
  for (const c of correlations) for (const old of c.incident.merged ?? []) parent.set(old, c.incident.id)
  return new Map(correlations.map((c) => [c.id, find(c.incident.id)]))
}

describe('incident grouping', () => {
  it('merges two incidents when a correlation falls within the gap of both', () => {
    const g = createIncidentGrouper(gap)
    const a = g.assign('agent', T0, 'c-a', ['edge:x'])
    const b = g.assign('agent', T0 + 50 * minute, 'c-b', ['core:y'])
    expect(b.id).not.toBe(a.id)
    const bridge = g.assign('agent', T0 + 25 * minute, 'c-bridge', ['edge:x'])
    expect(bridge).toMatchObject({
      id: a.id,
      merged: [b.id],
      correlation_count: 3,
      signals: ['core:y', 'edge:x'],
    })
    expect(g.size()).toBe(1)
  })

  it('emits a correlation that merges or renames incidents even over the per-rule bound', () => {
    // Suppressed, the bridge was never built, so no record said `merged`: the store kept both incidents.
    const g = createIncidentGrouper(gap, [], 1)
    const a = g.assign('agent', T0, 'c-a', ['edge:x'], 'rule', 50)
    const b = g.assign('agent', T0 + 50 * minute, 'c-b', ['edge:x'], 'rule', 50)
    const bridge = g.assign('agent', T0 + 25 * minute, 'c-bridge', ['edge:x'], 'rule', 50)
    expect(bridge).toMatchObject({ id: a.id, merged: [b.id], suppressed: false })
    const later = g.assign('agent', T0 + 26 * minute, 'c-later', ['edge:x'], 'rule', 50)
    expect(later).toMatchObject({ id: a.id, suppressed: true, suppressed_count: 1 })
    const renamer = g.assign('agent', T0 - 10 * minute, 'c-0', ['edge:x'], 'rule', 50)
    expect(renamer).toMatchObject({ merged: [a.id], suppressed: false })
  })

  it('keeps the bound across a checkpoint, and adds the bounds of incidents merged after it', () => {
    const live = createIncidentGrouper(gap, [], 2)
    const run = (g: ReturnType<typeof createIncidentGrouper>) => [
      g.assign('agent', T0, 'c-1', ['edge:x'], 'rule', 50),
      g.assign('agent', T0 + 1, 'c-2', ['edge:x'], 'rule', 50),
      g.assign('agent', T0 + 50 * minute, 'c-3', ['edge:x'], 'rule', 70),
    ]
    run(live)
    const restored = createIncidentGrouper(gap, JSON.parse(JSON.stringify(live.snapshot())), 2)
    expect(JSON.stringify(restored.snapshot())).toBe(JSON.stringify(live.snapshot()))
    for (const g of [live, restored]) {
      expect(g.assign('agent', T0 + 2, 'c-4', [], 'rule', 50)).toMatchObject({ suppressed: true })
      // Bridging: emitted (it merges), and the merged incident's best score (70) is the one to beat.
      expect(g.assign('agent', T0 + 25 * minute, 'c-5', [], 'rule', 60)).toMatchObject({ suppressed: false })
      expect(g.assign('agent', T0 + 26 * minute, 'c-6', [], 'rule', 65)).toMatchObject({ suppressed: true })
      expect(g.assign('agent', T0 + 27 * minute, 'c-7', [], 'rule', 71)).toMatchObject({ suppressed: false })
    }
    expect(JSON.stringify(restored.snapshot())).toBe(JSON.stringify(live.snapshot()))
    expect(live.snapshot()[0]).toMatchObject({
      per_rule: { rule: 7 },
      best_score: { rule: 71 },
      suppressed_count: 2,
    })
  })

  it('names an incident after its earliest correlation, whatever came first', () => {
    const g = createIncidentGrouper(gap)
    const late = g.assign('agent', T0 + 10 * minute, 'c-late', [])
    const early = g.assign('agent', T0, 'c-early', [])
    expect(early.merged).toEqual([late.id])
    expect(early.id).toBe(createIncidentGrouper(gap).assign('agent', T0, 'c-early', []).id)
  })

  it('renames an incident at most maxRenames times, then keeps its id (and its per-rule bound)', () => {
    // Each one earlier than every one before: before the bound, each renamed the incident, was emitted
    // over the per-rule bound, and made a store rewrite every correlation of the incident.
    const g = createIncidentGrouper(gap, [], 5)
    const views = Array.from({ length: 200 }, (_, i) =>
      g.assign('agent', T0 - i, `c-${i}`, ['edge:x'], 'rule', 50),
    )
    const renaming = views.filter((v) => v.merged)
    expect(renaming).toHaveLength(maxRenames)
    expect(renaming.map((v) => v.merged)).toEqual(views.slice(0, maxRenames).map((v) => [v.id]))
    const kept = views[maxRenames]?.id
    expect(new Set(views.slice(maxRenames).map((v) => v.id))).toEqual(new Set([kept]))
    expect(views.filter((v) => !v.suppressed)).toHaveLength(maxRenames + 1)
    expect(views.at(-1)).toMatchObject({ correlation_count: 200, first_seen: T0 - 199 })
    expect(g.snapshot()[0]).toMatchObject({ renames: maxRenames, earliest: { time: T0 - 199 } })
  })

  it('still merges incidents once their renames are used up, and counts them across a checkpoint', () => {
    const g = createIncidentGrouper(gap)
    for (let i = 0; i <= maxRenames; i++) g.assign('agent', T0 - i, `c-${i}`, [])
    const a = g.assign('agent', T0 - maxRenames - 1, 'c-a', [])
    expect(a.merged).toBeUndefined()
    const b = g.assign('agent', T0 + 50 * minute, 'c-b', [])
    const restored = createIncidentGrouper(gap, JSON.parse(JSON.stringify(g.snapshot())))
    for (const grouper of [g, restored]) {
      const bridge = grouper.assign('agent', T0 + 25 * minute, 'c-bridge', [])
      expect(bridge).toMatchObject({ id: a.id, merged: [b.id], correlation_count: maxRenames + 4 })
      expect(grouper.assign('agent', T0 - 20 * minute, 'c-early', [])).toMatchObject({ id: a.id })
      expect(grouper.size()).toBe(1)
    }
    expect(JSON.stringify(restored.snapshot())).toBe(JSON.stringify(g.snapshot()))
  })

  it('gives --order input and --order time the same incidents when nothing is late', () => {
    const config = loadConfig()
    const spec = fc.array(
      fc.record({
        edge: fc.boolean(),
        at: fc.integer({ min: 0, max: 180 }),
        delay: fc.integer({ min: 0, max: 8 }),
      }),
      { minLength: 2, maxLength: 30 },
    )
    fc.assert(
      fc.property(spec, (specs) => {
        const events: { event: NormalizedEvent; arrival: number }[] = specs.map((s, i) => {
          const time = T0 + s.at * minute
          const event = s.edge
            ? edgeEvent({ id: `e${i}`, time })
            : coreEvent({ id: `c${i}-0000-0000-0000-000000000000`, time })
          return { event, arrival: time + s.delay * minute }
        })
        const byTime = [...events].sort((a, b) => a.event.time - b.event.time).map((e) => e.event)
        const byArrival = [...events].sort((a, b) => a.arrival - b.arrival).map((e) => e.event)
        const inTime = replayCorrelations(config, byTime)
        const inInput = replayCorrelations(config, byArrival)
        fc.pre(inInput.counts.late === 0)
        expect(new Set(inInput.correlations.map((c) => c.id))).toEqual(
          new Set(inTime.correlations.map((c) => c.id)),
        )
        expect(finalIncidents(inInput.correlations)).toEqual(finalIncidents(inTime.correlations))
      }),
      { numRuns: 200 },
    )
  })
})
