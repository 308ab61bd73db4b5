// The correlator's slice of the whole config: the rules (the built-in pack when none are given, plus
// `extra_rules`), the
// default window, the state bounds, the incident gap and nerve's own revoker identities.
import { NerveError } from '../runtime/errors.ts'
import { formatDuration } from '../schemas/duration.ts'
import type { Config, RuleConfig, WindowConfig } from '../schemas/types.ts'
import { builtinRules } from './builtin-rules.ts'
import type { CorrelatorConfig } from './correlator-types.ts'
import { compileRules } from './match-rules.ts'

/** Throws CONFIG_INVALID naming every rule problem, so start-up fails before anything is consumed. */
export function correlatorConfigOf(config: Config): CorrelatorConfig {
  const c = config.correlation
  const rules = [...(c.rules ?? builtinRules), ...(c.extra_rules ?? [])]
  compileRules(rules, c.window)
  const problems = windowGapProblems(c)
  if (problems.length > 0) {
    throw new NerveError(
      'CONFIG_INVALID',
      `Correlation windows are longer than the incident gap:\n  ${problems.join('\n  ')}`,
      { details: problems },
    )
  }
  return {
    rules,
    window: c.window,
    max_events_per_agent: c.max_events_per_agent,
    memory_budget_bytes: c.memory_budget_bytes,
    incident_gap: c.incident_gap,
    clock_tolerance: c.clock_tolerance,
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

/**
 * A window side longer than `incident_gap` is refused. Correlations are grouped by their time (the later
 * of their two events), and those of one event spread over its window: with `after: 1h` and the 30m gap,
 * one Falco alert and IAM calls 5 and 50 minutes after it made two incidents holding the same alert,
 * overlapping in time, each revoked on its own. With both sides at most the gap, the correlations of one
 * event always lie within the gap of each other. Each key is named where it is set: the default window
 * once, a rule only for the sides it overrides.
 */
function windowGapProblems(c: Config['correlation']): string[] {
  const gap = c.incident_gap
  const problems: string[] = []
  const check = (where: string, window: Partial<WindowConfig> | undefined) => {
    for (const side of ['before', 'after'] as const) {
      const value = window?.[side]
      if (value === undefined || value <= gap) continue
      problems.push(
        `${where}.window.${side} (${formatDuration(value)}) is longer than correlation.incident_gap ` +
          `(${formatDuration(gap)}): one event could correlate into two incidents; raise incident_gap to at ` +
          `least ${formatDuration(value)} or shorten the window`,
      )
    }
  }
  check('correlation', c.window)
  for (const list of ['rules', 'extra_rules'] as const) {
    const rules: readonly RuleConfig[] = c[list] ?? []
    for (const [i, rule] of rules.entries()) check(`correlation.${list}[${i}] (${rule.id})`, rule.window)
  }
  return problems
}
