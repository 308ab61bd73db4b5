// Routine work stays quiet: eight agents doing their usual calls every 10 minutes for a day, then an
// engineer's debug shell in each pod and 30 more minutes of routine, give no revoke-grade correlation
// (a revoking rule at or above revoke.min_score) with the built-in pack. The same shell followed by what
// routine is not (a secret the agent never read, a burst of them) does reach revoke grade.
import { describe, expect, it } from 'vitest'
import { createReplay } from '../../../correlate/replay-correlations.ts'
import type { Config, Correlation } from '../../../schemas/types.ts'
import {
  agentNames,
  call,
  debugShell,
  decode,
  fleetConfig,
  roleArn,
  routineCalls,
  secretArn,
} from './routine-agents.ts'

const T0 = Date.UTC(2026, 2, 2, 0, 0)
const tick = 600_000
const day = 86_400_000

/** A day of routine, the shells at T0 + 1 day, 30 more minutes of routine, then `after` (raw items). */
function run(config: Config, after: (shellAt: number) => Record<string, unknown>[] = () => []) {
  const items: Record<string, unknown>[] = []
  for (let t = T0; t < T0 + day; t += tick) for (const a of agentNames) items.push(...routineCalls(a, t))
  const shellAt = T0 + day + 30_000
  for (const a of agentNames) items.push(debugShell(a, shellAt))
  for (let t = T0 + day; t <= T0 + day + 1_800_000; t += tick)
    for (const a of agentNames) items.push(...routineCalls(a, t + 60_000))
  items.push(...after(shellAt))
  const events = decode(config, items).sort((a, b) => a.time - b.time || a.time_ns - b.time_ns)
  const replay = createReplay(config)
  const correlations = events.flatMap((e) => replay.push(e).correlations)
  return { correlations, counts: replay.counts() }
}

const revokeGrade = (config: Config) => (c: Correlation) =>
  c.rule.revoke && c.score >= config.revoke.min_score
const factors = (c: Correlation) => c.reasons.map((r) => r.factor)

describe('the behavioural baseline on routine work', () => {
  const config = fleetConfig()
  const routine = run(config)

  it('gives no revoke-grade correlation for debug shells amid routine calls', () => {
    expect(routine.correlations.length).toBeGreaterThan(0)
    expect(routine.correlations.filter(revokeGrade(config))).toEqual([])
  })

  it('says why: the reads are routine, seen many times this week', () => {
    for (const c of routine.correlations) {
      expect(c.rule.id).toBe('shell-then-credential-access')
      const routineReason = c.reasons.find((r) => r.factor === 'baseline_routine')
      expect(routineReason?.points).toBeLessThan(0)
      expect(routineReason?.detail).toMatch(/^routine: seen \d+ times this week/)
    }
  })

  it('raises a secret the agent never read after the shell to revoke grade', () => {
    const { correlations } = run(config, (shellAt) => [
      call('billing', shellAt + 120_000, 'secretsmanager:GetSecretValue', {
        secretId: secretArn('exporter'),
      }),
    ])
    const novel = correlations.find(
      (c) => c.agent.id === 'billing' && c.core.target === secretArn('exporter'),
    )
    expect(novel && factors(novel)).toContain('baseline_novel_resource')
    expect(novel && revokeGrade(config)(novel)).toBe(true)
  })

  it('raises a burst of distinct secrets and says how many in how long', () => {
    const { correlations } = run(config, (shellAt) =>
      agentNames.map((other, i) =>
        call('ingest', shellAt + 200_000 + i * 5_000, 'secretsmanager:GetSecretValue', {
          secretId: secretArn(other),
        }),
      ),
    )
    const burst = correlations
      .filter((c) => c.agent.id === 'ingest')
      .flatMap((c) => c.reasons)
      .find((r) => r.factor === 'baseline_burst')
    expect(burst?.detail).toMatch(/^\d+ distinct secrets in 10 min, \d+ of them new to this agent$/)
  })

  it('judges an agent with no history as neither routine nor novel, and says so', () => {
    const withNewbie: Config = {
      ...config,
      agents: [
        ...config.agents,
        {
          id: 'newbie',
          protected: false,
          match: { k8s: [{ namespace: 'agents', pod: 'newbie-*' }], aws: [roleArn('newbie')] },
        },
      ],
    }
    const { correlations } = run(withNewbie, (shellAt) => [
      debugShell('newbie', shellAt),
      call('newbie', shellAt + 60_000, 'secretsmanager:GetSecretValue', { secretId: secretArn('newbie') }),
    ])
    const fresh = correlations.find((c) => c.core.target === secretArn('newbie'))
    expect(fresh?.reasons.find((r) => r.factor.startsWith('baseline_'))).toMatchObject({
      factor: 'baseline_no_history',
      points: 0,
    })
  })

  it('is what lowers the score: with the baseline off the same reads score higher', () => {
    const off: Config = {
      ...config,
      correlation: { ...config.correlation, baseline: { ...config.correlation.baseline, enabled: false } },
    }
    const without = run(off).correlations
    expect(without.map((c) => c.id)).toEqual(routine.correlations.map((c) => c.id))
    for (const [i, c] of without.entries())
      expect(c.score).toBe((routine.correlations[i] as Correlation).score + 20)
  })

  it('gives scores whose reasons add up', () => {
    for (const c of routine.correlations)
      expect(c.reasons.reduce((sum, r) => sum + r.points, 0)).toBe(c.score)
  })
})
