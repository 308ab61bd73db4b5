// `nerve replay`'s summary counts what `nerve run`'s revoke policy would decide. With a registry, the
// fallback-named agents the watched agent can mint share only half of the global budget, so they cannot
// starve the registered agent's revoke: the backtest must count it that way too.
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config, Correlation } from '../../../schemas/types.ts'
import { createReplayRevokeTally } from '../../../sinks/replay-revoke-tally.ts'
import { suppressReasons } from '../../../sinks/revoke-policy.ts'
import { createRevokeDispatcher } from '../../../sinks/revoke-webhook-dispatcher.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { createMemoryBus } from './memory-bus.ts'

const hour = 3_600_000

function registryConfig(global = 4): Config {
  const config = loadConfig()
  return {
    ...config,
    agents: [{ id: 'data-cleaner', protected: false, match: { k8s: [{ pod: 'data-cleaner-*' }] } }],
    revoke: {
      ...config.revoke,
      rate_limit: { per_agent: { count: 1, per: hour }, global: { count: global, per: hour } },
    },
  }
}

const open: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const x of open.splice(0)) await x.close()
})

/** What nerve run's dispatcher (dry run) decides for one batch, as counts by reason. */
async function liveCounts(config: Config, batch: readonly Correlation[]) {
  const at = batch[0]?.time ?? 0
  const rt = createTestRuntime({ now: () => at })
  const d = createRevokeDispatcher(
    { data_dir: tempDir('nerve-tally'), agents: config.agents, revoke: { ...config.revoke, dry_run: true } },
    { bus: createMemoryBus(), log: rt.log, metrics: rt.metrics, now: () => at },
  )
  open.push(d)
  await d.handle(batch)
  const revokes = await rt.metricValue('nerve_revoke_outcomes_total', {
    status: 'dry_run',
    reason: 'dry_run',
  })
  const suppressed: Record<string, number> = {}
  for (const reason of suppressReasons)
    suppressed[reason] = await rt.metricValue('nerve_revoke_outcomes_total', { status: 'suppressed', reason })
  return { revokes, suppressed }
}

const forged = (i: number, overrides: Partial<Correlation> = {}) =>
  makeCorrelation(100 + i, {
    score: 95,
    agent: { id: `agents/forged-${i}`, resolved_by: 'workload', identity: {} },
    incident: { id: `${String(i).padStart(2, '0')}${'f'.repeat(62)}` },
    ...overrides,
  })

describe('the replay revoke tally', () => {
  it('keeps half of the global budget for registered agents, as nerve run does', () => {
    const tally = createReplayRevokeTally(registryConfig())
    for (let i = 0; i < 10; i++) tally.decide(forged(i))
    tally.decide(makeCorrelation(120, { score: 80, incident: { id: 'a'.repeat(64) } }))
    const { revokes, suppressed } = tally.counts()
    expect(revokes).toBe(3)
    expect(suppressed.rate_limited_global_fallback).toBe(8)
    expect(suppressed.rate_limited_global).toBe(0)
  })

  it("decides the correlations of one event time in nerve run's batch order: registered agents first", async () => {
    // One global revoke. Emitted first, two correlations of one forged name; then the registered agent's,
    // all at the same event time. nerve run decides that batch registered agent first: it is revoked and
    // both forged ones meet a spent budget. One at a time, the forged name took the revoke instead.
    const config = registryConfig(1)
    const at = makeCorrelation(0).time
    const batch = [
      forged(0, { time: at, score: 99 }),
      forged(0, { time: at, score: 99, id: `d${'0'.repeat(63)}`, incident: { id: 'b'.repeat(64) } }),
      makeCorrelation(1, { time: at, score: 80, incident: { id: 'a'.repeat(64) } }),
    ]
    const tally = createReplayRevokeTally(config)
    for (const c of batch) tally.decide(c)
    const replayed = tally.counts()
    expect(replayed).toEqual(await liveCounts(config, batch))
    expect(replayed.revokes).toBe(1)
    expect(replayed.suppressed.rate_limited_global).toBe(2)
    expect(replayed.suppressed.rate_limited_agent).toBe(0)
  })

  it('decides at most bus.max_batch correlations of one event time together, as a live batch holds', () => {
    const config = { ...registryConfig(1), bus: { ...loadConfig().bus, max_batch: 2 } }
    const at = makeCorrelation(0).time
    const tally = createReplayRevokeTally(config)
    tally.decide(forged(0, { time: at, score: 99 }))
    tally.decide(
      forged(0, { time: at, score: 99, id: `d${'0'.repeat(63)}`, incident: { id: 'b'.repeat(64) } }),
    )
    tally.decide(makeCorrelation(1, { time: at, score: 80, incident: { id: 'a'.repeat(64) } }))
    const { revokes, suppressed } = tally.counts()
    // The first two are a batch of their own: the forged name takes the revoke.
    expect(revokes).toBe(1)
    expect(suppressed.rate_limited_agent).toBe(1)
    expect(suppressed.rate_limited_global).toBe(1)
  })

  it('decides correlations of later event times after the earlier ones, whatever their scores', () => {
    // Not one batch: the weaker correlation comes first in event time and takes the agent's one revoke.
    const at = makeCorrelation(0).time
    const tally = createReplayRevokeTally(registryConfig())
    tally.decide(makeCorrelation(1, { time: at, score: 75 }))
    tally.decide(makeCorrelation(2, { time: at + 1, score: 99 }))
    const { revokes, suppressed } = tally.counts()
    expect(revokes).toBe(1)
    expect(suppressed.rate_limited_agent).toBe(1)
  })
})
