// Config globs (runtime/glob.ts) as predicates, compiled once per pattern; a pattern without wildcards is
// a plain comparison.
import { globToRegExp } from '../runtime/glob.ts'

export type Glob = (value: string | undefined) => boolean

export function compileGlob(pattern: string): Glob {
  if (!pattern.includes('*') && !pattern.includes('?')) return (value) => value === pattern
  const regex = globToRegExp(pattern)
  return (value) => value !== undefined && regex.test(value)
}

/** True when any of `patterns` matches any of `values`. */
export function compileGlobs(
  patterns: readonly string[] = [],
): (...values: (string | undefined)[]) => boolean {
  const globs = patterns.map(compileGlob)
  return (...values) => globs.some((g) => values.some((v) => g(v)))
}
