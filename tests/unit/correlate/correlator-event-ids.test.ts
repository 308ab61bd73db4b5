// Dedup looks ids up by a hash of their own (seen table in agent-windows.ts), which must never change what an
// id is: ids that differ only in case, in length or in one digit stay distinct, and every id comes back byte
// for byte in correlations, snapshots and checkpoints.
import { describe, expect, it } from 'vitest'
import { createCorrelator } from '../../../correlate/correlator.ts'
import type { CorrelatorConfig } from '../../../correlate/correlator-types.ts'
import { anyThenIam, coreEvent, edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const rule = anyThenIam
const config: CorrelatorConfig = {
  rules: [rule],
  window: { before: 60_000, after: 600_000, grace: 300_000 },
  max_events_per_agent: 1000,
  memory_budget_bytes: 1 << 26,
  incident_gap: 1_800_000,
  self_identities: [],
}

const sha = 'f3a1c9e07b5d4e2a9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d'
const ids = [
  sha,
  sha.toUpperCase(),
  `${sha.slice(0, 63)}e`,
  sha.slice(0, 62),
  'ab12',
  'AB12',
  'ab1',
  '0g',
  'ÿ00',
  '',
]

describe('event ids in the buffers', () => {
  it('keeps look-alike ids apart and returns each exactly', () => {
    const c = createCorrelator(config, undefined, { trackChanges: true })
    ids.forEach((id, i) => {
      expect(c.accept(edgeEvent({ id, time: T0 + i })).duplicate).toBeUndefined()
    })
    // '' is accepted like any other id (K1 needs an agent key, not an event id), and then seen.
    ids.forEach((id, i) => {
      expect(c.accept(edgeEvent({ id, time: T0 + 20 + i })).duplicate).toBe(true)
    })
    const coreId = '39480357-a8a9-4c6d-9c1f-2b6f5a9d3e11'
    const found = c.accept(coreEvent({ id: coreId, time: T0 + 50 })).correlations
    expect(found.map((x) => x.edge.event_id)).toEqual(ids)
    expect(found.every((x) => x.core.event_id === coreId)).toBe(true)
    expect(c.snapshot().entries.map((e) => e.id)).toEqual([...ids, coreId])
    expect(c.takeChanges().added.map((e) => e.id)).toEqual([...ids, coreId])
  })
})
