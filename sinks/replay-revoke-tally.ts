// What the revoke policy would do with a replay's correlations, for `nerve replay`'s summary: how many
// revokes it would send and how many it would suppress, by reason. The same policy as `nerve run`, with
// event time (the correlation's time) as its clock so the counts are deterministic, and webhook targets
// assumed configured (a backtest asks what the policy decides, not whether a URL is set). Pure.
import type { Config, Correlation } from '../schemas/types.ts'
import { createRevokePolicy, type SuppressReason, suppressReasons } from './revoke-policy.ts'

export type ReplayRevokeCounts = { revokes: number; suppressed: Record<SuppressReason, number> }

export function createReplayRevokeTally(config: Pick<Config, 'revoke' | 'agents'>) {
  const policy = createRevokePolicy(
    {
      min_score: config.revoke.min_score,
      dry_run: config.revoke.dry_run,
      rate_limit: config.revoke.rate_limit,
      protected_agents: config.agents.filter((a) => a.protected).map((a) => a.id),
      // As nerve run's dispatcher: with a registry, fallback-named agents share half the global budget.
      registered_agents: config.agents.map((a) => a.id),
      has_targets: true,
    },
    [],
  )
  let revokes = 0
  const suppressed = Object.fromEntries(suppressReasons.map((r) => [r, 0])) as Record<SuppressReason, number>
  return {
    decide(correlation: Correlation): void {
      const decision = policy.decide(correlation, correlation.time)
      if (decision.revoke) revokes++
      else suppressed[decision.reason]++
    },
    counts: (): ReplayRevokeCounts => ({ revokes, suppressed: { ...suppressed } }),
  }
}
