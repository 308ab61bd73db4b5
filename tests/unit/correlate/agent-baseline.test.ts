// The baseline store stays within its bounds and forgets by event time; the verdict reads it as documented.
import { describe, expect, it } from 'vitest'
import {
  type BaselineConfig,
  createBaselineStore,
  maxResources,
  recentCalls,
} from '../../../correlate/agent-baseline.ts'
import { judgeBaseline } from '../../../correlate/baseline-verdict.ts'

const T0 = Date.UTC(2026, 2, 2)
const hour = 3_600_000
const config: BaselineConfig = {
  enabled: true,
  history: 7 * 24 * hour,
  warmup: hour,
  routine_min: 20,
  burst_window: 600_000,
  burst_min: 5,
  memory_bytes: 1 << 20,
}
const ask = (time: number, action: string, target?: string) => ({
  time,
  action,
  target,
  denied: false,
  critical: false,
  includesSelf: false,
})

describe('the baseline store', () => {
  it('keeps at most maxResources resources and recentCalls calls per agent', () => {
    const store = createBaselineStore(config)
    for (let i = 0; i < maxResources + 50; i++)
      store.observe('a', T0 + i * 1000, 'ssm:GetParameter', `ssm:/p/${i}`)
    const a = store.get('a')
    expect(a?.resources.size).toBe(maxResources)
    expect(a?.resources.has('ssm:/p/0')).toBe(false)
    expect(a?.recentKeys).toHaveLength(recentCalls)
  })

  it('checkpoints the last recentCalls calls oldest first, and a restored store goes on as the original', () => {
    // The recent calls are a ring once full: the checkpoint's list is still in call order, and a store
    // restored mid-ring adds the next calls in the same places as the store it was saved from.
    const store = createBaselineStore(config)
    const call = (s: typeof store, i: number) =>
      s.observe('a', T0 + i * 1000, 'secretsmanager:GetSecretValue', `secretsmanager:s-${i}`)
    for (let i = 0; i < recentCalls + 5; i++) call(store, i)
    const [saved] = store.snapshot()
    expect(saved?.recent).toEqual(
      Array.from({ length: recentCalls }, (_, k) => [T0 + (k + 5) * 1000, `secretsmanager:s-${k + 5}`]),
    )
    const restored = createBaselineStore(config, store.snapshot())
    for (let i = recentCalls + 5; i < 2 * recentCalls + 9; i++) {
      call(store, i)
      call(restored, i)
    }
    expect(restored.snapshot()).toEqual(store.snapshot())
    expect(restored.snapshot()[0]?.recent[0]).toEqual([
      T0 + (recentCalls + 9) * 1000,
      `secretsmanager:s-${recentCalls + 9}`,
    ])
  })

  it('keeps its byte count call by call equal to weighing every agent afresh', () => {
    // observe() updates an agent's bytes as it adds and drops keys; a store restored from its snapshot
    // weighs each agent whole: both must agree, past the action, resource and recent-call limits too.
    const store = createBaselineStore(config)
    for (let i = 0; i < 2_000; i++) {
      const agent = `agent-${i % 7}`
      const target = i % 3 === 0 ? undefined : `secretsmanager:s-${(i * 7919) % 400}`
      store.observe(agent, T0 + i * 300_000, `svc${i % 90}:Call`, target)
      if (i % 250 === 0) expect(createBaselineStore(config, store.snapshot()).bytes()).toBe(store.bytes())
    }
    for (const horizon of [
      T0 + 24 * hour,
      T0 + 5.5 * 24 * hour,
      T0 + 5.5 * 24 * hour,
      T0 + 6.9 * 24 * hour,
    ]) {
      store.forgetBefore(horizon)
      const fresh = createBaselineStore(config, store.snapshot())
      expect(fresh.bytes()).toBe(store.bytes())
      // A sweep that skips an agent whose bounds say nothing is old forgets what a full one forgets.
      fresh.forgetBefore(horizon)
      expect(fresh.snapshot()).toEqual(store.snapshot())
    }
  })

  it('sheds the agent seen least recently past its byte budget, and counts it', () => {
    const store = createBaselineStore({ ...config, memory_bytes: 3_000 })
    for (const [i, agent] of ['a', 'b', 'c', 'd', 'e'].entries())
      store.observe(agent, T0 + i, 'secretsmanager:GetSecretValue', `secretsmanager:${agent}`)
    expect(store.bytes()).toBeLessThanOrEqual(3_000)
    expect(store.get('a')).toBeUndefined()
    expect(store.get('e')).toBeDefined()
    expect(store.evicted()).toBeGreaterThan(0)
    expect(store.takeChanges().removed).toContain('a')
  })

  it('forgets actions and resources not seen within history', () => {
    const store = createBaselineStore(config)
    store.observe('a', T0, 'kms:Decrypt', undefined)
    store.observe('a', T0 + 8 * 24 * hour, 'ssm:GetParameter', 'ssm:/x')
    store.forgetBefore(T0 + 8 * 24 * hour - config.history)
    expect([...(store.get('a')?.actions.keys() ?? [])]).toEqual(['ssm:GetParameter'])
  })
})

describe('the baseline verdict', () => {
  const warm = () => {
    const store = createBaselineStore(config)
    for (let t = T0; t < T0 + 24 * hour; t += 600_000)
      store.observe('a', t, 'secretsmanager:GetSecretValue', 'secretsmanager:own')
    return store
  }

  it('calls a routine read routine and lowers the score', () => {
    const reasons = judgeBaseline(
      config,
      warm().get('a'),
      ask(T0 + 24 * hour, 'secretsmanager:GetSecretValue', 'own'),
    )
    expect(reasons).toEqual([
      {
        factor: 'baseline_routine',
        points: -20,
        detail: 'routine: seen 144 times this week, on a resource it uses',
      },
    ])
  })

  it('never discounts a denied or a critical call', () => {
    const a = warm().get('a')
    const q = ask(T0 + 24 * hour, 'secretsmanager:GetSecretValue', 'own')
    expect(judgeBaseline(config, a, { ...q, denied: true })[0]?.points).toBe(0)
    expect(judgeBaseline(config, a, { ...q, critical: true })[0]?.points).toBe(0)
  })

  it('raises a first call of an action', () => {
    const reasons = judgeBaseline(config, warm().get('a'), ask(T0 + 24 * hour, 'iam:CreateAccessKey'))
    expect(reasons).toEqual([
      {
        factor: 'baseline_novel_action',
        points: 10,
        detail: 'first time this agent calls iam:CreateAccessKey in 23 h',
      },
    ])
  })

  it('does not count a call the baseline already holds as its own history', () => {
    const store = warm()
    const time = T0 + 24 * hour
    store.observe('a', time, 'iam:CreateAccessKey', 'iam:bob')
    const reasons = judgeBaseline(config, store.get('a'), {
      ...ask(time, 'iam:CreateAccessKey', 'bob'),
      includesSelf: true,
    })
    expect(reasons.map((r) => r.factor)).toEqual(['baseline_novel_action', 'baseline_novel_resource'])
  })

  it('raises a burst from exactly burst_min distinct resources of the service in the window', () => {
    // The call judged plus burst_min − 1 secrets read in the 10 minutes before it, alone or amid another
    // service's calls, after an older read: one secret fewer is no burst.
    const burstFrom = (secrets: number, others: boolean) => {
      const store = warm()
      const time = T0 + 24 * hour + 300_000
      store.observe('a', time - 900_000, 'secretsmanager:GetSecretValue', 'secretsmanager:old')
      for (let i = 0; i < secrets; i++) {
        store.observe('a', time - 500_000 + i, 'secretsmanager:GetSecretValue', `secretsmanager:s${i}`)
        if (others) store.observe('a', time - 400_000 + i, 's3:GetObject', `s3:bucket-${i}`)
      }
      return judgeBaseline(config, store.get('a'), ask(time, 'secretsmanager:GetSecretValue', 'new'))
    }
    for (const others of [false, true]) {
      expect(burstFrom(config.burst_min - 1, others).find((r) => r.factor === 'baseline_burst')).toEqual({
        factor: 'baseline_burst',
        points: 10,
        detail: '5 distinct secrets in 10 min, 5 of them new to this agent',
      })
      expect(burstFrom(config.burst_min - 2, others).map((r) => r.factor)).not.toContain('baseline_burst')
    }
  })
})
