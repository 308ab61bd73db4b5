// The registry's Kubernetes entries (`agents[].match.k8s`) as one look-up: the index of the first agent
// one of whose entries matches an identity (every key the entry names matches its glob), or Infinity.
// Trying a thousand agents' entries one by one for each Falco alert cost more than decoding the alert;
// here each entry is filed under the one key of it that the fewest entries share, a literal (Map by value)
// or a literal prefix followed by `*` (Map by prefix, one look-up per distinct prefix length), so an
// identity is checked only against the entries filed under its own values. Entries with no such key (no
// keys at all, or only other wildcards) are tried in agent order. First match wins, exactly as before.
import type { AgentConfig, IdentityFields } from '../schemas/types.ts'
import { compileGlob, type Glob } from './match-glob.ts'

const keys = ['cluster', 'namespace', 'pod', 'service_account'] as const
type Key = (typeof keys)[number]

type Entry = { agent: number; checks: { key: Key; glob: Glob }[] }
/** Entries by value (a literal) or by prefix, each list in agent order. */
type Filed = { literal: Map<string, Entry[]>; prefix: Map<string, Entry[]>; lengths: number[] }

export function compileK8sMatch(
  agents: readonly Pick<AgentConfig, 'match'>[],
): (identity: IdentityFields) => number {
  const entries: { entry: Entry; patterns: [Key, string][] }[] = []
  agents.forEach((agent, index) => {
    for (const k8s of agent.match.k8s ?? []) {
      const patterns: [Key, string][] = []
      for (const key of keys) {
        const pattern = k8s[key]
        if (pattern !== undefined) patterns.push([key, pattern])
      }
      const checks = patterns.map(([key, pattern]) => ({ key, glob: compileGlob(pattern) }))
      entries.push({ entry: { agent: index, checks }, patterns })
    }
  })
  const empty = (): Filed => ({ literal: new Map(), prefix: new Map(), lengths: [] })
  const filed: Record<Key, Filed> = {
    cluster: empty(),
    namespace: empty(),
    pod: empty(),
    service_account: empty(),
  }
  const unfiled: Entry[] = []
  // How many entries each (key, literal or prefix) would hold: an entry is filed where it has fewest peers.
  const sizes = new Map<string, number>()
  const slots = entries.map(({ patterns }) => patterns.map(([key, pattern]) => slotOf(key, pattern)))
  for (const slot of slots.flat()) if (slot) sizes.set(slot.id, (sizes.get(slot.id) ?? 0) + 1)
  entries.forEach(({ entry }, i) => {
    let best: Slot | undefined
    for (const slot of slots[i] as (Slot | undefined)[]) {
      if (slot && (!best || (sizes.get(slot.id) ?? 0) < (sizes.get(best.id) ?? 0))) best = slot
    }
    if (!best) {
      unfiled.push(entry)
      return
    }
    // The key it is filed under matches whenever the entry is looked up: only its other keys are checked.
    const filedKey = best.key
    entry.checks = entry.checks.filter((check) => check.key !== filedKey)
    const where = filed[best.key][best.kind]
    const list = where.get(best.text)
    if (list) list.push(entry)
    else where.set(best.text, [entry])
  })
  for (const key of keys) {
    const f = filed[key]
    f.lengths = [...new Set([...f.prefix.keys()].map((p) => p.length))].sort((a, b) => a - b)
  }
  const active = keys.filter((key) => filed[key].literal.size > 0 || filed[key].prefix.size > 0)

  return (identity) => {
    let best = firstIn(unfiled, identity, Number.POSITIVE_INFINITY)
    for (const key of active) {
      const value = fieldOf(identity, key)
      if (value === undefined) continue
      const f = filed[key]
      const same = f.literal.get(value)
      if (same) best = firstIn(same, identity, best)
      for (const length of f.lengths) {
        if (length > value.length) break
        const sharing = f.prefix.get(value.slice(0, length))
        if (sharing) best = firstIn(sharing, identity, best)
      }
    }
    return best
  }
}

type Slot = { id: string; key: Key; kind: 'literal' | 'prefix'; text: string }

const isLiteral = (pattern: string) => !pattern.includes('*') && !pattern.includes('?')

function slotOf(key: Key, pattern: string): Slot | undefined {
  if (isLiteral(pattern)) return { id: `${key}=${pattern}`, key, kind: 'literal', text: pattern }
  const prefix = pattern.slice(0, -1)
  if (pattern.endsWith('*') && isLiteral(prefix)) {
    return { id: `${key}^${prefix}`, key, kind: 'prefix', text: prefix }
  }
  return undefined
}

/** The earlier of `best` and the first entry of `list` (in agent order) whose every check matches. */
function firstIn(list: readonly Entry[], identity: IdentityFields, best: number): number {
  for (const entry of list) {
    if (entry.agent >= best) return best
    if (entry.checks.every(({ key, glob }) => glob(fieldOf(identity, key)))) return entry.agent
  }
  return best
}

function fieldOf(identity: IdentityFields, key: Key): string | undefined {
  if (key === 'cluster') return identity.cluster
  if (key === 'namespace') return identity.k8s_namespace
  if (key === 'pod') return identity.k8s_pod
  return identity.k8s_service_account
}
