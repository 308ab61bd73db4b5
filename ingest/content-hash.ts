// A stable hash of JSON content: object keys sorted at every level, so the same content hashes the same
// whichever encoder (Falco's nlohmann::json, Falcosidekick's Go encoder) wrote it.
import { createHash } from 'node:crypto'

export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 32)
}

export function canonicalJson(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const keys = Object.keys(value).sort()
  const entries = keys.map(
    (k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`,
  )
  return `{${entries.join(',')}}`
}
