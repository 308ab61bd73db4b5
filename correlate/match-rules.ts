// Rule filters, compiled once at start-up: which rules can use an edge or a core event. Every
// configuration problem is collected and reported at once (CONFIG_INVALID), each with its rule and key.
import { NerveError } from '../runtime/errors.ts'
import { globToRegExp } from '../runtime/glob.ts'
import {
  attackTactics,
  attackTechniques,
  tacticIdPattern,
  techniqueIdPattern,
} from '../runtime/mitre-attack.ts'
import {
  type AttackRef,
  type CoreFields,
  type EdgeFields,
  type FalcoPriority,
  falcoPriorities,
  type RuleConfig,
  type WindowConfig,
} from '../schemas/types.ts'
import { ruleVersion } from './correlation-id.ts'

/** Rule masks are 32-bit integers: one bit per rule. */
export const maxRules = 32

export type CompiledRule = {
  index: number
  id: string
  version: string
  severity: number
  revoke: boolean
  /** The rule's ATT&CK ids with their names, as each correlation carries them; null when it names none. */
  mitre: { tactics: AttackRef[]; techniques: AttackRef[] } | null
  window: WindowConfig
  edge: {
    names: RegExp[] | null
    /** Highest allowed rank in falcoPriorities (0 = emergency); 7 admits everything. */
    maxRank: number
    tags: ReadonlySet<string> | null
    sources: ReadonlySet<string> | null
  }
  core: {
    actions: RegExp[] | null
    readOnly: boolean | null
    /** null: no error filter; '*' in the list: any error code. */
    errorCodes: ReadonlySet<string> | null
  }
}

export type RuleMatcher = {
  rules: readonly CompiledRule[]
  /** Bit r set when rule r's edge filter accepts the event. */
  edgeMask(edge: EdgeFields): number
  /** Bit r set when rule r's core filter accepts the event. */
  coreMask(core: CoreFields): number
}

const ruleIdPattern = /^[a-z0-9][a-z0-9._-]*$/
const actionPattern = /^[a-z0-9*?-]+:[A-Za-z0-9*?]+$/
const cacheLimit = 50_000

export const priorityRank = (p: FalcoPriority): number => falcoPriorities.indexOf(p)

/** Validates and compiles rules; throws CONFIG_INVALID naming every problem. */
export function compileRules(rules: readonly RuleConfig[], defaults: WindowConfig): CompiledRule[] {
  const problems: string[] = []
  if (rules.length === 0) problems.push('correlation.rules: at least one rule is needed')
  if (rules.length > maxRules)
    problems.push(`correlation.rules: at most ${maxRules} rules (got ${rules.length})`)
  const seen = new Set<string>()
  rules.forEach((rule, index) => {
    const where = `correlation.rules[${index}]${rule.id ? ` (${rule.id})` : ''}`
    problems.push(...ruleProblems(rule, defaults, where))
    if (seen.has(rule.id)) problems.push(`${where}.id: duplicate rule id "${rule.id}"`)
    seen.add(rule.id)
  })
  if (problems.length > 0) {
    throw new NerveError('CONFIG_INVALID', `Correlation rules are invalid:\n  ${problems.join('\n  ')}`, {
      details: problems,
    })
  }
  return rules.map((rule, index) => compileRule(rule, defaults, index))
}

function ruleProblems(rule: RuleConfig, defaults: WindowConfig, where: string): string[] {
  const problems: string[] = []
  if (typeof rule.id !== 'string' || !ruleIdPattern.test(rule.id))
    problems.push(`${where}.id: must match ${ruleIdPattern.source}`)
  if (!Number.isInteger(rule.severity) || rule.severity < 0 || rule.severity > 100)
    problems.push(`${where}.severity: must be an integer from 0 to 100`)
  const window = { ...defaults, ...rule.window }
  for (const key of ['before', 'after', 'grace'] as const) {
    const v = window[key]
    if (!Number.isInteger(v) || v < 0) problems.push(`${where}.window.${key}: must be milliseconds ≥ 0`)
  }
  const lists: [string, readonly string[] | undefined][] = [
    ['edge.rules', rule.edge?.rules],
    ['edge.tags', rule.edge?.tags],
    ['edge.sources', rule.edge?.sources],
    ['core.actions', rule.core?.actions],
    ['core.error_codes', rule.core?.error_codes],
  ]
  for (const [key, list] of lists) {
    if (list === undefined) continue
    if (list.length === 0)
      problems.push(`${where}.${key}: an empty list matches nothing; omit the key to match all`)
    list.forEach((item, i) => {
      if (typeof item !== 'string' || item.trim() === '')
        problems.push(`${where}.${key}[${i}]: must be a non-empty string`)
    })
  }
  rule.core?.actions?.forEach((action, i) => {
    if (typeof action === 'string' && action !== '' && !actionPattern.test(action))
      problems.push(`${where}.core.actions[${i}]: "${action}" is not service:EventName (e.g. iam:Attach*)`)
  })
  rule.mitre?.tactics?.forEach((id, i) => {
    if (typeof id !== 'string' || !tacticIdPattern.test(id))
      problems.push(`${where}.mitre.tactics[${i}]: "${id}" is not an ATT&CK tactic id (e.g. TA0006)`)
  })
  rule.mitre?.techniques?.forEach((id, i) => {
    if (typeof id !== 'string' || !techniqueIdPattern.test(id))
      problems.push(`${where}.mitre.techniques[${i}]: "${id}" is not an ATT&CK technique id (e.g. T1555.006)`)
  })
  const minPriority = rule.edge?.min_priority
  if (minPriority !== undefined && !falcoPriorities.includes(minPriority))
    problems.push(`${where}.edge.min_priority: must be one of ${falcoPriorities.join(', ')}`)
  return problems
}

function compileRule(rule: RuleConfig, defaults: WindowConfig, index: number): CompiledRule {
  const window = { ...defaults, ...rule.window }
  const edge = rule.edge ?? {}
  const core = rule.core ?? {}
  return {
    index,
    id: rule.id,
    version: ruleVersion({ ...rule, window }),
    severity: rule.severity,
    revoke: rule.revoke,
    mitre: compileAttack(rule.mitre),
    window,
    edge: {
      names: edge.rules ? edge.rules.map(globToRegExp) : null,
      maxRank: edge.min_priority ? priorityRank(edge.min_priority) : falcoPriorities.length - 1,
      tags: edge.tags ? new Set(edge.tags) : null,
      sources: edge.sources ? new Set(edge.sources) : null,
    },
    core: {
      actions: core.actions ? core.actions.map(globToRegExp) : null,
      readOnly: core.read_only ?? null,
      errorCodes: core.error_codes ? new Set(core.error_codes) : null,
    },
  }
}

function compileAttack(mitre: RuleConfig['mitre']): CompiledRule['mitre'] {
  const tactics = mitre?.tactics ?? []
  const techniques = mitre?.techniques ?? []
  if (tactics.length + techniques.length === 0) return null
  const ref = (names: Readonly<Record<string, string>>) => (id: string) => {
    const name = names[id]
    return name === undefined ? { id } : { id, name }
  }
  return { tactics: tactics.map(ref(attackTactics)), techniques: techniques.map(ref(attackTechniques)) }
}

const edgeNames = (r: CompiledRule) => r.edge.names
const coreActions = (r: CompiledRule) => r.core.actions

/** Glob results are cached per distinct rule name / action: the hot path is one Map lookup. */
export function createRuleMatcher(rules: readonly CompiledRule[]): RuleMatcher {
  const nameCache = new Map<string, number>()
  const actionCache = new Map<string, number>()

  const globMask = (
    cache: Map<string, number>,
    value: string,
    pick: (r: CompiledRule) => RegExp[] | null,
  ) => {
    let mask = cache.get(value)
    if (mask !== undefined) return mask
    mask = 0
    for (const rule of rules) {
      const globs = pick(rule)
      if (globs === null || globs.some((g) => g.test(value))) mask |= 1 << rule.index
    }
    if (cache.size >= cacheLimit) cache.clear()
    cache.set(value, mask)
    return mask
  }

  const edgeMask = (edge: EdgeFields): number => {
    if (edge.internal) return 0
    let mask = globMask(nameCache, edge.rule, edgeNames)
    if (mask === 0) return 0
    const rank = priorityRank(edge.priority)
    for (const rule of rules) {
      const bit = 1 << rule.index
      if ((mask & bit) === 0) continue
      const f = rule.edge
      const ok =
        rank >= 0 &&
        rank <= f.maxRank &&
        (f.sources === null || f.sources.has(edge.source)) &&
        (f.tags === null || edge.tags.some((t) => f.tags?.has(t)))
      if (!ok) mask &= ~bit
    }
    return mask
  }

  const coreMask = (core: CoreFields): number => {
    let mask = globMask(actionCache, core.action, coreActions)
    if (mask === 0) return 0
    for (const rule of rules) {
      const bit = 1 << rule.index
      if ((mask & bit) === 0) continue
      const f = rule.core
      const readOnlyOk = f.readOnly === null || (core.read_only ?? false) === f.readOnly
      const errorOk =
        f.errorCodes === null ||
        (core.error_code !== undefined && (f.errorCodes.has('*') || f.errorCodes.has(core.error_code)))
      if (!readOnlyOk || !errorOk) mask &= ~bit
    }
    return mask
  }

  return { rules, edgeMask, coreMask }
}
