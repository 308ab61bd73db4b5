// What the revoke policy would do with a replay's correlations, for `nerve replay`'s summary: how many
// revokes it would send and how many it would suppress, by reason. The same policy as `nerve run`, with
// event time (the correlation's time) as its clock so the counts are deterministic, and webhook targets
// assumed configured (a backtest asks what the policy decides, not whether a URL is set). Pure.
// The correlations of one event time are decided together, as `nerve run` decides a batch (decideBatch:
// registered agents first, then higher scores; merges learnt first): one at a time in emission order,
// a fallback-named agent or a weaker correlation emitted first took the budget that the live run gives
// to the registered agent or the stronger one. A replay has no consumer batches; the correlations of one
// instant of its clock are the ones the live policy could see together, at most `bus.max_batch` of them
// (a live batch's bound, and what keeps an instant the watched agent fills with correlations bounded).
import type { Config, Correlation } from '../schemas/types.ts'
import { createRevokePolicy, decideBatch, type SuppressReason, suppressReasons } from './revoke-policy.ts'

export type ReplayRevokeCounts = { revokes: number; suppressed: Record<SuppressReason, number> }

export function createReplayRevokeTally(config: Pick<Config, 'revoke' | 'agents' | 'bus'>) {
  const registered = config.agents.map((a) => a.id)
  const policy = createRevokePolicy(
    {
      min_score: config.revoke.min_score,
      dry_run: config.revoke.dry_run,
      rate_limit: config.revoke.rate_limit,
      protected_agents: config.agents.filter((a) => a.protected).map((a) => a.id),
      // As nerve run's dispatcher: with a registry, fallback-named agents share half the global budget.
      registered_agents: registered,
      has_targets: true,
    },
    [],
  )
  const registeredSet = new Set(registered)
  let revokes = 0
  const suppressed = Object.fromEntries(suppressReasons.map((r) => [r, 0])) as Record<SuppressReason, number>
  /** The correlations of the current event time, not decided yet. */
  let batch: Correlation[] = []
  const flush = () => {
    if (batch.length === 0) return
    const decided = batch
    batch = []
    decideBatch(policy, decided, registeredSet, (c) => {
      const decision = policy.decide(c, c.time)
      if (decision.revoke) revokes++
      else suppressed[decision.reason]++
      return decision
    })
  }
  return {
    decide(correlation: Correlation): void {
      if (
        batch.length > 0 &&
        ((batch[0] as Correlation).time !== correlation.time || batch.length >= config.bus.max_batch)
      )
        flush()
      batch.push(correlation)
    },
    counts: (): ReplayRevokeCounts => {
      flush()
      return { revokes, suppressed: { ...suppressed } }
    },
  }
}
