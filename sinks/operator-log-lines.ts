// The log lines an operator reads to follow what nerve decided, one per fact: an incident opened, a revoke
// decided, delivered, not delivered or suppressed (with its reason). Ids and bounded codes only, never
// payloads: what the watched agent wrote stays in the store and the API.
import type { Logger } from '../runtime/logger.ts'
import type { Correlation, RevokeOutcome } from '../schemas/types.ts'

export function logIncidentOpened(log: Logger, c: Correlation): void {
  log.info(
    {
      component: 'correlation_store',
      incident_id: c.incident.id,
      agent_id: c.agent.id,
      rule: c.rule.id,
      score: c.score,
      action: c.core.action,
    },
    'Incident opened.',
  )
}

type Outcome = Pick<RevokeOutcome, 'decision_id' | 'incident_id' | 'agent_id' | 'status' | 'reason'> &
  Partial<Pick<RevokeOutcome, 'target' | 'attempts' | 'http_status'>>

/**
 * Suppressions that are no news, at debug: every later correlation of a revoked incident, and those of
 * rules that never ask for a revoke.
 */
const quietSuppressions = new Set(['incident_already_revoked', 'rule_not_revoking'])

/** One line per revoke outcome, on the dispatcher's logger (`component` bound). Pending retries: debug. */
export function logRevokeOutcome(log: Logger, o: Outcome): void {
  const fields = {
    decision_id: o.decision_id,
    incident_id: o.incident_id,
    agent_id: o.agent_id,
    status: o.status,
    reason: o.reason,
    ...(o.target ? { target: o.target } : {}),
    ...(o.attempts ? { attempts: o.attempts } : {}),
    ...(o.http_status ? { http_status: o.http_status } : {}),
  }
  const [level, message] = lineFor(o)
  log[level](fields, message)
}

function lineFor(o: Outcome): ['debug' | 'info' | 'error', string] {
  switch (o.status) {
    case 'sent':
      return ['info', 'Revoke delivered.']
    case 'failed':
      return ['error', 'Revoke not delivered.']
    case 'dry_run':
      return ['info', 'Revoke decided (dry run: not sent).']
    case 'suppressed':
      return [quietSuppressions.has(o.reason) ? 'debug' : 'info', 'Revoke suppressed.']
    default:
      return o.attempts ? ['debug', 'Revoke delivery will be retried.'] : ['info', 'Revoke decided: sending.']
  }
}
