// "Did you mean" for unknown config keys: the allowed key at the same place that is closest by edit
// distance, when it is close enough to be the likely intent. Pure.
import { schemaAt } from './config-schema.ts'

/** The candidate nearest to `word`, if within a third of its length (at least 2 edits); else undefined. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

/** The suggestion for an unknown key at an ajv instance path (the object holding the key). */
export function suggestKey(instancePath: string, key: string): string | undefined {
  const node = schemaAt(instancePath)
  return node?.properties ? closest(key, Object.keys(node.properties)) : undefined
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      row[j] = Math.min(
        (previous[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      )
    }
    previous = row
  }
  return previous[b.length] as number
}
