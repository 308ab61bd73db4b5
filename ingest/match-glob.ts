// Globs as the config writes them: `*` any run of characters (slashes included), `?` one character,
// everything else literal. Compiled once per pattern.
export type Glob = (value: string | undefined) => boolean

export function compileGlob(pattern: string): Glob {
  if (!pattern.includes('*') && !pattern.includes('?')) return (value) => value === pattern
  const source = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('')
  const regex = new RegExp(`^${source}$`, 's')
  return (value) => value !== undefined && regex.test(value)
}

/** True when any of `patterns` matches any of `values`. */
export function compileGlobs(
  patterns: readonly string[] = [],
): (...values: (string | undefined)[]) => boolean {
  const globs = patterns.map(compileGlob)
  return (...values) => globs.some((g) => values.some((v) => g(v)))
}
