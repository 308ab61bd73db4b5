// A rule window longer than correlation.incident_gap let one event's correlations fall in two incidents:
// correlations are grouped by their time (the later of their two events), and those of one Falco alert
// spread over the whole window. Two incidents of one alert, overlapping in time, each revoked once.
import { describe, expect, it } from 'vitest'
import { createCorrelator } from '../../../correlate/correlator.ts'
import { correlatorConfigOf } from '../../../correlate/correlator-config.ts'
import type { CorrelatorConfig } from '../../../correlate/correlator-types.ts'
import type { NerveError } from '../../../runtime/errors.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config, Correlation, RuleConfig } from '../../../schemas/types.ts'
import { anyThenIam, coreEvent, edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const minute = 60_000
const rule = anyThenIam

const correlatorConfig = (after: number, gap: number): CorrelatorConfig => ({
  rules: [rule],
  window: { before: 2 * minute, after, grace: 20 * minute },
  max_events_per_agent: 1000,
  memory_budget_bytes: 64 * 1024 * 1024,
  incident_gap: gap,
  self_identities: [],
})

/** One Falco alert, then IAM writes 5 and 50 minutes after it (Stratus Red Team's AttachRolePolicy). */
const burst = (config: CorrelatorConfig): Correlation[] => {
  const c = createCorrelator(config)
  c.accept(edgeEvent({ id: 'alert', time: T0 }))
  return [5, 50].flatMap((m) => c.accept(coreEvent({ id: `call-${m}`, time: T0 + m * minute })).correlations)
}

const withCorrelation = (over: Partial<Config['correlation']>): Config => {
  const base = loadConfig()
  return { ...base, correlation: { ...base.correlation, ...over } }
}

const problemsOf = (config: Config): string[] => {
  try {
    correlatorConfigOf(config)
  } catch (err) {
    expect((err as NerveError).code).toBe('CONFIG_INVALID')
    expect((err as NerveError).message).toMatch(
      /^Correlation windows are longer than the incident gap:\n {2}correlation/,
    )
    return (err as NerveError).details as string[]
  }
  return []
}

describe('a rule window longer than incident_gap', () => {
  it('splits one alert into two incidents (what the config check prevents)', () => {
    const split = burst(correlatorConfig(60 * minute, 30 * minute))
    expect(split.map((c) => c.edge.event_id)).toEqual(['alert', 'alert'])
    expect(new Set(split.map((c) => c.incident.id)).size).toBe(2)
    // With the gap at least the window, one alert's correlations are within the gap of each other.
    const joined = burst(correlatorConfig(60 * minute, 60 * minute))
    expect(new Set(joined.map((c) => c.incident.id)).size).toBe(1)
  })

  it('is refused at start-up, naming the window key and incident_gap', () => {
    const gap = 30 * minute
    expect(
      problemsOf(
        withCorrelation({ incident_gap: gap, window: { before: 2 * minute, after: 31 * minute, grace: 0 } }),
      ),
    ).toEqual([
      'correlation.window.after (31m) is longer than correlation.incident_gap (30m): one event could ' +
        'correlate into two incidents; raise incident_gap to at least 31m or shorten the window',
    ])
    const rules: RuleConfig[] = [
      rule,
      { ...rule, id: 'late-iam', window: { before: 45 * minute } },
      { ...rule, id: 'short', window: { after: gap } },
    ]
    expect(problemsOf(withCorrelation({ incident_gap: gap, rules }))).toEqual([
      'correlation.rules[1] (late-iam).window.before (45m) is longer than correlation.incident_gap (30m): ' +
        'one event could correlate into two incidents; raise incident_gap to at least 45m or shorten the window',
    ])
    expect(problemsOf(withCorrelation({ incident_gap: gap, extra_rules: [rules[1] as RuleConfig] }))).toEqual(
      [
        'correlation.extra_rules[0] (late-iam).window.before (45m) is longer than correlation.incident_gap ' +
          '(30m): one event could correlate into two incidents; raise incident_gap to at least 45m or shorten ' +
          'the window',
      ],
    )
  })

  it('accepts windows up to the gap, and the defaults', () => {
    expect(problemsOf(loadConfig())).toEqual([])
    const window = { before: 30 * minute, after: 30 * minute, grace: 0 }
    expect(problemsOf(withCorrelation({ incident_gap: 30 * minute, window }))).toEqual([])
  })
})
