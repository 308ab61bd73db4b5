// Configuration as YAML that `--config` accepts again: durations written back as `90s`, `20m`, `1h`
// (the largest unit that divides them exactly), for `nerve config` and `nerve rules`. Pure.
import { stringify } from 'yaml'
import { formatDuration } from '../schemas/duration.ts'
import { configSchemaRoot, durationRef, resolveRef, type SchemaNode } from './config-schema.ts'

/** A copy of `value` with every duration (by the schema at `schema`) as text. */
export function humanDurations(value: unknown, schema: SchemaNode = configSchemaRoot): unknown {
  if (schema.$ref === durationRef && typeof value === 'number') return formatDuration(value)
  const resolved = resolveRef(schema)
  if (Array.isArray(value)) return value.map((v) => (resolved.items ? humanDurations(v, resolved.items) : v))
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => {
        const sub = resolved.properties?.[k]
        return [k, sub ? humanDurations(v, sub) : v]
      }),
    )
  }
  return value
}

export function toConfigYaml(value: unknown, header: string): string {
  const comment = header
    .split('\n')
    .map((line) => `# ${line}`.trimEnd())
    .join('\n')
  return `${comment}\n${stringify(humanDurations(value), { lineWidth: 0 })}`
}
