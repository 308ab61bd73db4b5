// Durations as the config writes them: milliseconds, or a number and a unit (`500ms`, `90s`, `2m`, `1h`,
// `1d`). Parsed by loading and by the schema's `maxDuration` keyword, written back by `nerve config`. Pure.

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const largestFirst = (['d', 'h', 'm', 's'] as const).map((unit) => [unit, unitMs[unit] as number] as const)

/** `90s` → 90000; a number is milliseconds already. Undefined when the text is not a duration. */
export function parseDuration(value: number | string): number | undefined {
  if (typeof value === 'number') return value
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(value)
  return m ? Number(m[1]) * (unitMs[m[2] as string] as number) : undefined
}

/** 90000 → `90s`, 1200000 → `20m`, 1500 → `1500ms`, 0 → `0ms`: the largest unit that divides it exactly. */
export function formatDuration(ms: number): string {
  if (ms > 0) for (const [unit, size] of largestFirst) if (ms % size === 0) return `${ms / size}${unit}`
  return `${ms}ms`
}
