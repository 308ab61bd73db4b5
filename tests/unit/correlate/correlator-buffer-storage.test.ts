// The buffers keep some values in compact form (packed ids, output bytes, 32-bit lags) and fall back to the
// exact value wherever the compact form cannot hold it: non-ASCII output and lags that are no 32-bit
// integer come back exactly in correlations, snapshots and restored checkpoints.
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

const outputs = ['plain ascii', 'café ☕ in the container', '\ud800 lone surrogate', '']

describe('compact buffer storage', () => {
  it('returns every Falco output exactly, ASCII or not', () => {
    const c = createCorrelator(config)
    outputs.forEach((output, i) => {
      c.accept(edgeEvent({ id: `edge-${i}`, time: T0 + i, output }))
    })
    const found = c.accept(coreEvent({ id: 'core-1', time: T0 + 10 })).correlations
    expect(found.map((x) => x.edge.output)).toEqual(outputs)
    expect(
      c
        .snapshot()
        .entries.filter((e) => e.side === 'edge')
        .map((e) => e.output),
    ).toEqual(outputs)
  })

  it('keeps lags that are no 32-bit integer exactly across a restore', () => {
    const first = createCorrelator(config)
    first.accept(edgeEvent({ id: 'edge-a', time: T0 }))
    first.accept(edgeEvent({ id: 'edge-b', time: T0 + 1 }))
    const state = JSON.parse(JSON.stringify(first.snapshot()))
    const lags = [1.5, 2 ** 31 + 7]
    state.entries.forEach((e: { lag: number }, i: number) => {
      e.lag = lags[i] as number
    })
    const restored = createCorrelator(config, state)
    expect(restored.snapshot().entries.map((e) => e.lag)).toEqual(lags)
    const found = restored.accept(coreEvent({ id: 'core-1', time: T0 + 10 })).correlations
    expect(found.map((x) => x.lag_at_arrival?.edge)).toEqual(lags)
  })
})
