// Deterministic ids: the same rule and the same two events give the same correlation id in every run,
// so Elasticsearch writes (op_type=create) and webhooks stay idempotent on replay and restart.
import { hash } from 'node:crypto'
import type { RuleConfig } from '../schemas/types.ts'

const separator = '\u001f'

const sha256 = (parts: readonly string[]): string => hash('sha256', parts.join(separator), 'hex')

/** sha256(rule id ‖ 0x1f ‖ edge event id ‖ 0x1f ‖ core event id), hex. */
export const correlationId = (ruleId: string, edgeId: string, coreId: string): string =>
  sha256([ruleId, edgeId, coreId])

/** An incident is named after its agent and the correlation that opened it. */
export const incidentId = (agentId: string, firstCorrelationId: string): string =>
  sha256(['incident', agentId, firstCorrelationId])

/** Changes whenever a rule's filters, window, severity or revoke flag change (12 hex digits). */
export const ruleVersion = (rule: RuleConfig): string => sha256([canonicalJson(rule)]).slice(0, 12)

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}
