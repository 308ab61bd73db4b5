// Ingest's per-agent budget folds a flood's alerts past the first of each minute into one summary alert
// (ingest/agent-budget.ts). The summary is an edge event like any: rules that name its Falco rule pair it,
// at the last folded alert's time, so a call that only a folded alert reached still correlates; and it is a
// flood: rules that name "nerve: Alert flood" get the flood signal from it, catch-all rules do not.
import { describe, expect, it } from 'vitest'
import { createCorrelator, floodRuleName } from '../../../correlate/correlator.ts'
import { createAgentBudget } from '../../../ingest/agent-budget.ts'
import type { NormalizedEvent, RuleConfig } from '../../../schemas/types.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

const t0 = Date.UTC(2026, 11, 7, 18, 0)
const rule = (id: string, edge: RuleConfig['edge']): RuleConfig => ({
  id,
  edge,
  core: { actions: ['iam:*'], read_only: false },
  severity: 60,
  revoke: false,
})

function correlator(rules: RuleConfig[]) {
  return createCorrelator({
    rules,
    window: { before: 120_000, after: 900_000, grace: 1_200_000 },
    max_events_per_agent: 1_000,
    memory_budget_bytes: 1 << 28,
    incident_gap: 1_800_000,
    self_identities: [],
  })
}

/** A `cat /etc/shadow-$i` loop of 600 alerts, 100 ms apart, received in one minute: 100 kept, 1 summary. */
function foldedLoop(): { kept: NormalizedEvent[]; summary: NormalizedEvent } {
  const budget = createAgentBudget({
    perMinute: 100,
    maxKeys: 100,
    rulesPerAgent: 64,
    catchAllRules: 256,
    otherNames: 16,
    sampleChars: 256,
  })
  const loop = Array.from({ length: 600 }, (_, i) =>
    edgeEvent({
      id: `shadow-${i}`,
      time: t0 + i * 100,
      rule: 'Read sensitive file untrusted',
      priority: 'warning',
      output: `Warning Sensitive file opened for reading by non-trusted program (file=/etc/shadow-${i})`,
    }),
  )
  const { kept } = budget.admit(loop, t0 + 70_000)
  const summary = budget.close(t0 + 130_000)?.summaries[0] as NormalizedEvent
  return { kept, summary }
}

describe('a summary of folded alerts in the correlator', () => {
  it('pairs with a call only the folded alerts reached, and raises the flood signal for the rules that name it', () => {
    const c = correlator([
      rule('reads-then-iam', { rules: ['Read sensitive*'] }),
      rule('flood-then-iam', { rules: [floodRuleName] }),
      rule('any-then-iam', { min_priority: 'notice' }),
    ])
    const { kept, summary } = foldedLoop()
    expect(kept).toHaveLength(100)
    for (const event of kept) c.accept(event)
    expect(c.accept(summary).correlations).toEqual([])
    // 15 min 30 s after the loop began: past every kept alert's window (they end at 9.9 s), within the
    // last folded alert's (59.9 s).
    const { correlations } = c.accept(coreEvent({ id: 'attach', time: t0 + 930_000 }))
    expect(correlations.map((x) => [x.rule.id, x.edge.rule, x.edge.event_id]).sort()).toEqual(
      [
        ['any-then-iam', 'Read sensitive file untrusted', summary.id],
        ['flood-then-iam', floodRuleName, `flood-${summary.id}`],
        ['reads-then-iam', 'Read sensitive file untrusted', summary.id],
      ].sort(),
    )
    const flood = correlations.find((x) => x.rule.id === 'flood-then-iam')
    expect(flood?.edge).toMatchObject({ source: 'nerve', time: t0 + 59_900 })
    expect(flood?.edge.output).toMatch(/^Alert flood: Folded 500 alerts of "Read sensitive file untrusted"/)
  })

  it('raises the flood signal even when no rule names the folded rule', () => {
    const c = correlator([rule('flood-then-iam', { rules: [floodRuleName] })])
    const { kept, summary } = foldedLoop()
    for (const event of kept) c.accept(event)
    c.accept(summary)
    const { correlations } = c.accept(coreEvent({ id: 'attach', time: t0 + 120_000 }))
    expect(correlations.map((x) => x.edge.event_id)).toEqual([`flood-${summary.id}`])
  })

  it('gives no flood signal for an alert that only says it is from nerve', () => {
    const c = correlator([rule('flood-then-iam', { rules: [floodRuleName] })])
    c.accept(edgeEvent({ id: 'plain', time: t0, source: 'nerve', tags: ['nerve'] }))
    expect(c.accept(coreEvent({ id: 'attach', time: t0 + 60_000 })).correlations).toEqual([])
  })
})
