import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { builtinRules } from '../../../correlate/builtin-rules.ts'
import { compileRules, createRuleMatcher } from '../../../correlate/match-rules.ts'
import { isNerveError } from '../../../runtime/errors.ts'
import { globToRegExp } from '../../../runtime/glob.ts'
import type { RuleConfig } from '../../../schemas/types.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

const window = { before: 120_000, after: 900_000, grace: 1_200_000 }

function problemsOf(rules: RuleConfig[]): string[] {
  try {
    compileRules(rules, window)
  } catch (err) {
    if (isNerveError(err) && err.code === 'CONFIG_INVALID') return err.details as string[]
    throw err
  }
  return []
}

describe('rule validation', () => {
  it('names every problem at once, with its rule and key', () => {
    const problems = problemsOf([
      { id: 'ok-rule', edge: {}, core: {}, severity: 50, revoke: false },
      {
        id: 'Bad Id',
        edge: { rules: [], min_priority: 'loud' as never },
        core: { actions: ['AttachRolePolicy', ''], error_codes: [] },
        window: { before: -1 },
        severity: 101,
        revoke: false,
      },
      { id: 'ok-rule', edge: {}, core: {}, severity: 50, revoke: false },
    ])
    expect(problems).toEqual([
      'correlation.rules[1] (Bad Id).id: must match ^[a-z0-9][a-z0-9._-]*$',
      'correlation.rules[1] (Bad Id).severity: must be an integer from 0 to 100',
      'correlation.rules[1] (Bad Id).window.before: must be milliseconds ≥ 0',
      'correlation.rules[1] (Bad Id).edge.rules: an empty list matches nothing; omit the key to match all',
      'correlation.rules[1] (Bad Id).core.actions[1]: must be a non-empty string',
      'correlation.rules[1] (Bad Id).core.error_codes: an empty list matches nothing; omit the key to match all',
      'correlation.rules[1] (Bad Id).core.actions[0]: "AttachRolePolicy" is not service:EventName (e.g. iam:Attach*)',
      'correlation.rules[1] (Bad Id).edge.min_priority: must be one of emergency, alert, critical, error, warning, notice, informational, debug',
      'correlation.rules[2] (ok-rule).id: duplicate rule id "ok-rule"',
    ])
  })

  it('rejects an empty rule list and more rules than a mask holds', () => {
    expect(problemsOf([])).toEqual(['correlation.rules: at least one rule is needed'])
    const many = Array.from({ length: 33 }, (_, i) => ({
      id: `r${i}`,
      edge: {},
      core: {},
      severity: 1,
      revoke: false,
    }))
    expect(problemsOf(many)).toEqual(['correlation.rules: at most 32 rules (got 33)'])
  })
})

describe('rule filters', () => {
  const rules = compileRules(
    [
      {
        id: 'names',
        edge: { rules: ['Terminal shell*', 'Find AWS ?redentials'] },
        core: {},
        severity: 1,
        revoke: false,
      },
      { id: 'priority', edge: { min_priority: 'warning' }, core: {}, severity: 1, revoke: false },
      {
        id: 'tags-sources',
        edge: { tags: ['T1552', 'aws'], sources: ['syscall'] },
        core: {},
        severity: 1,
        revoke: false,
      },
      {
        id: 'iam-writes',
        edge: {},
        core: { actions: ['iam:Attach*', 'iam:Put*Policy'], read_only: false },
        severity: 1,
        revoke: false,
      },
      {
        id: 'denied',
        edge: {},
        core: { actions: ['sts:*'], error_codes: ['AccessDenied'] },
        severity: 1,
        revoke: false,
      },
      { id: 'any-error', edge: {}, core: { error_codes: ['*'] }, severity: 1, revoke: false },
    ],
    window,
  )
  const m = createRuleMatcher(rules)
  const ids = (mask: number) => rules.filter((r) => mask & (1 << r.index)).map((r) => r.id)
  const edge = (o: Parameters<typeof edgeEvent>[0]) =>
    edgeEvent(o).edge as NonNullable<ReturnType<typeof edgeEvent>['edge']>
  const core = (o: Parameters<typeof coreEvent>[0]) =>
    coreEvent(o).core as NonNullable<ReturnType<typeof coreEvent>['core']>

  it('filters edge events by rule-name glob, minimum priority, tags and source', () => {
    expect(ids(m.edgeMask(edge({ time: 0 })))).toEqual(['names', 'iam-writes', 'denied', 'any-error'])
    const find = edge({ time: 0, rule: 'Find AWS Credentials', priority: 'warning', tags: ['aws', 'T1552'] })
    expect(ids(m.edgeMask(find))).toEqual([
      'names',
      'priority',
      'tags-sources',
      'iam-writes',
      'denied',
      'any-error',
    ])
    expect(ids(m.edgeMask({ ...find, source: 'k8s_audit' }))).not.toContain('tags-sources')
    expect(ids(m.edgeMask({ ...find, rule: 'find aws credentials' }))).not.toContain('names')
    expect(m.edgeMask({ ...find, internal: true })).toBe(0)
  })

  it('filters core events by action glob, read_only and error codes', () => {
    expect(ids(m.coreMask(core({ time: 0, action: 'iam:AttachRolePolicy' })))).toEqual([
      'names',
      'priority',
      'tags-sources',
      'iam-writes',
    ])
    expect(ids(m.coreMask(core({ time: 0, action: 'iam:PutRolePolicy', readOnly: true })))).not.toContain(
      'iam-writes',
    )
    expect(ids(m.coreMask(core({ time: 0, action: 'sts:AssumeRole', errorCode: 'AccessDenied' })))).toContain(
      'denied',
    )
    expect(ids(m.coreMask(core({ time: 0, action: 'sts:AssumeRole' })))).not.toContain('denied')
    expect(ids(m.coreMask(core({ time: 0, action: 's3:GetObject', errorCode: 'NoSuchKey' })))).toContain(
      'any-error',
    )
  })

  it('globs are anchored and treat regex characters literally', () => {
    expect(
      globToRegExp('Redirect STDOUT/STDIN to Network Connection in Container').test(
        'Redirect STDOUT/STDIN to Network Connection in Container',
      ),
    ).toBe(true)
    expect(globToRegExp('iam:Put*Policy').test('iam:PutRolePolicyX')).toBe(false)
    expect(globToRegExp('a.b').test('axb')).toBe(false)
  })
})

describe('built-in rule pack', () => {
  const sampleRules = new Set(
    ['edge_rules_selected.yaml']
      .flatMap((f) => parse(readFileSync(`tests/fixtures/falco-rules/${f}`, 'utf8')) as { rule?: string }[])
      .flatMap((item) => (item.rule ? [item.rule] : [])),
  )

  it('compiles', () => {
    expect(compileRules(builtinRules, window)).toHaveLength(builtinRules.length)
  })

  it('names only real Falco rules in its edge filters', () => {
    for (const rule of builtinRules)
      for (const name of rule.edge.rules ?? []) expect(sampleRules).toContain(name)
  })

  it('treats key deactivation or deletion by the workload after a warning as impact (T1531)', () => {
    const rules = compileRules(builtinRules, window)
    const m = createRuleMatcher(rules)
    const ids = (mask: number) => rules.filter((r) => mask & (1 << r.index)).map((r) => r.id)
    const warning = edgeEvent({ time: 0, rule: 'Read sensitive file untrusted', priority: 'warning' }).edge
    const both = (action: string) => {
      const core = coreEvent({ time: 0, action }).core
      return ids(m.edgeMask(warning as never) & m.coreMask(core as never))
    }
    expect(both('iam:UpdateAccessKey')).toContain('runtime-alert-then-access-key-removal')
    expect(both('iam:DeleteAccessKey')).toContain('runtime-alert-then-access-key-removal')
  })
})
