// RevokeOutcome → the ECS document indexed into logs-nerve.revokes-<namespace>. Pure.
// Every decision is indexed, "not sent, and why" included: event.reason carries the bounded reason code.
import type { RevokeOutcome } from '../schemas/types.ts'
import { compact, type EcsDocument, ecsVersion, isoTime } from './ecs-field-mapping.ts'
import { dataStreamFields, datasetOf } from './elasticsearch-data-streams.ts'

const outcomes: Record<RevokeOutcome['status'], string> = {
  sent: 'success',
  failed: 'failure',
  pending: 'unknown',
  suppressed: 'unknown',
  dry_run: 'unknown',
}

export function buildRevokeDocument(o: RevokeOutcome, namespace: string, ingestedAt: number): EcsDocument {
  const delivering = o.status === 'sent' || o.status === 'failed' || o.status === 'pending'
  return compact({
    '@timestamp': isoTime(o.time),
    ecs: { version: ecsVersion },
    data_stream: dataStreamFields('revoke_outcomes', namespace),
    event: {
      kind: 'event',
      category: ['iam'],
      type: delivering ? ['change'] : ['info'],
      action: `revoke-${o.status.replace('_', '-')}`,
      outcome: outcomes[o.status],
      reason: o.reason,
      id: o.id,
      dataset: datasetOf('revoke_outcomes'),
      module: 'nerve',
      provider: 'nerve',
      ingested: isoTime(ingestedAt),
    },
    message: `Revoke ${o.status} for agent ${o.agent_id}: ${o.reason}${o.detail ? ` (${o.detail})` : ''}.`,
    url: o.target ? { original: o.target } : undefined,
    http: o.http_status === undefined ? undefined : { response: { status_code: o.http_status } },
    nerve: {
      agent: { id: o.agent_id },
      correlation: { id: o.correlation_id },
      incident: { id: o.incident_id },
      revoke: {
        decision_id: o.decision_id,
        status: o.status,
        reason: o.reason,
        detail: o.detail,
        target: o.target,
        attempts: o.attempts,
        http_status: o.http_status,
      },
    },
  })
}
