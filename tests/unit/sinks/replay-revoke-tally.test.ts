// `nerve replay`'s summary counts what `nerve run`'s revoke policy would decide. With a registry, the
// fallback-named agents the watched agent can mint share only half of the global budget, so they cannot
// starve the registered agent's revoke: the backtest must count it that way too.
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config } from '../../../schemas/types.ts'
import { createReplayRevokeTally } from '../../../sinks/replay-revoke-tally.ts'
import { makeCorrelation } from './correlation-fixture.ts'

const hour = 3_600_000

function registryConfig(): Config {
  const config = loadConfig()
  return {
    ...config,
    agents: [{ id: 'data-cleaner', protected: false, match: { k8s: [{ pod: 'data-cleaner-*' }] } }],
    revoke: {
      ...config.revoke,
      rate_limit: { per_agent: { count: 1, per: hour }, global: { count: 4, per: hour } },
    },
  }
}

describe('the replay revoke tally', () => {
  it('keeps half of the global budget for registered agents, as nerve run does', () => {
    const tally = createReplayRevokeTally(registryConfig())
    for (let i = 0; i < 10; i++) {
      tally.decide(
        makeCorrelation(100 + i, {
          score: 95,
          agent: { id: `agents/forged-${i}`, resolved_by: 'workload', identity: {} },
          incident: { id: `${String(i).padStart(2, '0')}${'f'.repeat(62)}` },
        }),
      )
    }
    tally.decide(makeCorrelation(120, { score: 80, incident: { id: 'a'.repeat(64) } }))
    const { revokes, suppressed } = tally.counts()
    expect(revokes).toBe(3)
    expect(suppressed.rate_limited_global_fallback).toBe(8)
    expect(suppressed.rate_limited_global).toBe(0)
  })
})
