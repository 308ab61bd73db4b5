// Config globs (runtime/glob.ts) as predicates, compiled once per pattern; a pattern without wildcards is
// a plain comparison, `prefix*` and `*suffix` are startsWith and endsWith.
import { globToRegExp } from '../runtime/glob.ts'

export type Glob = (value: string | undefined) => boolean

const isLiteral = (pattern: string) => !pattern.includes('*') && !pattern.includes('?')

export function compileGlob(pattern: string): Glob {
  if (isLiteral(pattern)) return (value) => value === pattern
  // The usual registry globs, `prefix*` and `*suffix`, without a regular expression.
  const star = pattern.indexOf('*')
  if (star === pattern.length - 1 && isLiteral(pattern.slice(0, -1))) {
    const prefix = pattern.slice(0, -1)
    return (value) => value?.startsWith(prefix) === true
  }
  if (star === 0 && isLiteral(pattern.slice(1))) {
    const suffix = pattern.slice(1)
    return (value) => value?.endsWith(suffix) === true
  }
  const regex = globToRegExp(pattern)
  return (value) => value !== undefined && regex.test(value)
}

/** True when any of `patterns` matches `value` or `other`. */
export function compileGlobs(
  patterns: readonly string[] = [],
): (value: string | undefined, other?: string) => boolean {
  const globs = patterns.map(compileGlob)
  if (globs.length === 0) return () => false
  return (value, other) => {
    for (const glob of globs) if (glob(value) || glob(other)) return true
    return false
  }
}

/**
 * Ordered entries, each with its patterns → the index of the first entry one of whose patterns matches
 * `value`, or Infinity. Literal patterns are one Map look-up for all entries together, and so are prefix
 * patterns (`data-cleaner-*`, the usual pod glob): one look-up per distinct prefix length. Only the other
 * wildcard patterns of entries before the best match so far are tried: a registry of a thousand agents
 * costs about what one costs.
 */
export function compileFirstMatch(
  entries: readonly (readonly string[] | undefined)[],
): (value: string | undefined) => number {
  const literal = new Map<string, number>()
  const prefixes = new Map<string, number>()
  const wildcard: { index: number; regex: RegExp }[] = []
  entries.forEach((patterns, index) => {
    for (const pattern of patterns ?? []) {
      const prefix = pattern.slice(0, -1)
      if (isLiteral(pattern)) {
        if (!literal.has(pattern)) literal.set(pattern, index)
      } else if (pattern.endsWith('*') && isLiteral(prefix)) {
        if (!prefixes.has(prefix)) prefixes.set(prefix, index)
      } else wildcard.push({ index, regex: globToRegExp(pattern) })
    }
  })
  const lengths = [...new Set([...prefixes.keys()].map((p) => p.length))].sort((a, b) => a - b)
  return (value) => {
    if (value === undefined) return Number.POSITIVE_INFINITY
    let best = literal.get(value) ?? Number.POSITIVE_INFINITY
    for (const length of lengths) {
      if (length > value.length) break
      const index = prefixes.get(value.slice(0, length))
      if (index !== undefined && index < best) best = index
    }
    // In entry order: the first wildcard that matches is the earliest one.
    for (const { index, regex } of wildcard) {
      if (index >= best) break
      if (regex.test(value)) return index
    }
    return best
  }
}
