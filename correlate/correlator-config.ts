// The correlator's slice of the whole config: the rules (the built-in pack when none are given, plus
// `extra_rules`), the
// default window, the state bounds, the incident gap and nerve's own revoker identities.
import type { Config } from '../schemas/types.ts'
import { builtinRules } from './builtin-rules.ts'
import type { CorrelatorConfig } from './correlator.ts'
import { compileRules } from './match-rules.ts'

/** Throws CONFIG_INVALID naming every rule problem, so start-up fails before anything is consumed. */
export function correlatorConfigOf(config: Config): CorrelatorConfig {
  const c = config.correlation
  const rules = [...(c.rules ?? builtinRules), ...(c.extra_rules ?? [])]
  compileRules(rules, c.window)
  return {
    rules,
    window: c.window,
    max_events_per_agent: c.max_events_per_agent,
    memory_budget_bytes: c.memory_budget_bytes,
    incident_gap: c.incident_gap,
    max_correlations_per_incident_rule: c.max_correlations_per_incident_rule,
    self_identities: config.revoke.self_identities,
    baseline: {
      enabled: c.baseline.enabled,
      history: c.baseline.history,
      warmup: c.baseline.warmup,
      routine_min: c.baseline.routine_min,
      burst_window: c.baseline.burst_window,
      burst_min: c.baseline.burst_min,
      memory_bytes: Math.floor(c.memory_budget_bytes * c.baseline.memory_share),
    },
  }
}
