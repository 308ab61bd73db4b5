// A stable hash of JSON content: object keys sorted at every level, so the same content hashes the same
// whichever encoder (Falco's nlohmann::json, Falcosidekick's Go encoder) wrote it.
import { hash } from 'node:crypto'

export function contentHash(value: unknown): string {
  return hash('sha256', canonicalJson(value), 'hex').slice(0, 32)
}

function canonicalJson(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value) ?? 'null'
  // Falco and Falcosidekick both write sorted keys: then the native encoder gives the canonical form.
  if (isCanonical(value)) return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const keys = Object.keys(value).sort()
  const entries = keys.map(
    (k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`,
  )
  return `{${entries.join(',')}}`
}

function isCanonical(value: object): boolean {
  if (Array.isArray(value)) return value.every((v) => typeof v !== 'object' || v === null || isCanonical(v))
  let previous = ''
  let first = true
  for (const key in value) {
    if (!first && key <= previous) return false
    first = false
    previous = key
    const v = (value as Record<string, unknown>)[key]
    if (v === undefined || (typeof v === 'object' && v !== null && !isCanonical(v))) return false
  }
  return true
}
