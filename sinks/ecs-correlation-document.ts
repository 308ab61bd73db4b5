// Correlation → the ECS alert indexed into logs-nerve.correlations-<namespace>. Pure.
// event.kind: alert makes it show up in Kibana Security: the prebuilt External Alerts rule promotes it,
// looking back over event.ingested (its timestamp override), taking its risk score from event.risk_score
// (the correlation score, 0–100) and its severity from event.severity, which it maps only from the exact
// values 21 / 47 / 73 / 99 (low / medium / high / critical): the score's band in Elastic's own ranges.
// The edge and core halves stay whole under nerve.edge and nerve.core.
// Who called is told as Elastic's AWS integration tells it on the CloudTrail call itself, so an analyst can
// pivot from the alert to the call: the caller's ARN in aws.cloudtrail.user_identity.arn, user.name the role or
// user name, user.id its userIdentity.principalId (core.principal_id; absent from records of versions before
// it). Neither the principal id nor the session name in related.user: the caller picks the session name
// (sts:AssumeRole's RoleSessionName, and a federated user's id holds GetFederationToken's Name), and it could
// name someone else.
import type { Correlation } from '../schemas/types.ts'
import {
  awsUserName,
  compact,
  type EcsDocument,
  ecsVersion,
  identityFields,
  ipLiteral,
  isHostSource,
  isoTime,
  threatOfCorrelation,
  uniqueStrings,
} from './ecs-field-mapping.ts'
import { dataStreamFields, datasetOf } from './elasticsearch-data-streams.ts'

/** Elastic's risk-score bands (0–21 low, 22–47 medium, 48–73 high, 74–100 critical) → the severity value. */
export function alertSeverity(score: number): 21 | 47 | 73 | 99 {
  if (score <= 21) return 21
  if (score <= 47) return 47
  if (score <= 73) return 73
  return 99
}

export function buildCorrelationDocument(c: Correlation, namespace: string, ingestedAt: number): EcsDocument {
  const identity = identityFields(c.agent.identity)
  const start = Math.min(c.edge.time, c.core.time)
  const end = Math.max(c.edge.time, c.core.time)
  // An assumed role's session issuer is its role (the identity's role_arn): the integration names the
  // caller after it, never after the session, whose name the caller chose.
  const issuerArn = c.core.principal.includes(':assumed-role/') ? c.agent.identity.role_arn : undefined
  const userName = awsUserName(c.core.principal, issuerArn)
  // core.principal falls back to the session issuer's ARN when a record names no caller ARN (the
  // correlator's event details): only the caller's own ARN is its userIdentity.arn.
  const callerArn = c.core.principal === c.agent.identity.principal_arn ? c.core.principal : undefined
  // A Falco alert may name no host: an empty name is left out, as Elastic's integrations drop empty values.
  const hostname = c.edge.hostname || undefined
  return compact({
    '@timestamp': isoTime(c.time),
    ecs: { version: ecsVersion },
    data_stream: dataStreamFields('correlations', namespace),
    event: {
      kind: 'alert',
      category: ['intrusion_detection'],
      type: ['info'],
      action: 'edge-core-correlation',
      severity: alertSeverity(c.score),
      risk_score: c.score,
      risk_score_norm: c.score,
      id: c.id,
      dataset: datasetOf('correlations'),
      module: 'nerve',
      provider: 'nerve',
      start: isoTime(start),
      end: isoTime(end),
      duration: (end - start) * 1_000_000,
      created: isoTime(c.time),
      ingested: isoTime(ingestedAt),
    },
    message: correlationMessage(c),
    tags: c.edge.tags,
    rule: { id: c.rule.id, name: c.rule.id, ruleset: 'nerve' },
    threat: threatOfCorrelation(c),
    observer: { hostname, product: 'Falco', vendor: 'Falco', type: 'ids' },
    host: isHostSource(c.edge.source) && hostname ? { name: hostname } : undefined,
    user: { name: userName, id: c.core.principal_id },
    ...identity,
    cloud: {
      provider: 'aws',
      account: { id: c.core.account_id ?? c.agent.identity.account_id },
      region: c.core.region,
      service: { name: c.core.action.split(':')[0] },
    },
    source: c.core.source_ip ? { address: c.core.source_ip, ip: ipLiteral(c.core.source_ip) } : undefined,
    aws: { cloudtrail: { user_identity: { arn: callerArn } } },
    related: {
      user: uniqueStrings([userName, c.agent.identity.k8s_service_account]),
      ip: uniqueStrings([ipLiteral(c.core.source_ip)]),
      hosts: uniqueStrings([hostname, c.agent.identity.host]),
    },
    nerve: {
      agent: { id: c.agent.id, resolved_by: c.agent.resolved_by },
      identity: { ...c.agent.identity },
      rule: {
        id: c.rule.id,
        severity: c.rule.severity,
        revoke: c.rule.revoke,
        version: c.rule.version,
        mitre: c.rule.mitre && {
          tactics: c.rule.mitre.tactics.map((t) => t.id),
          techniques: c.rule.mitre.techniques.map((t) => t.id),
        },
      },
      incident: {
        id: c.incident.id,
        first_seen: c.incident.first_seen === undefined ? undefined : isoTime(c.incident.first_seen),
        last_seen: c.incident.last_seen === undefined ? undefined : isoTime(c.incident.last_seen),
        correlation_count: c.incident.correlation_count,
        suppressed_count: c.incident.suppressed_count,
        signals: c.incident.signals,
        merged: c.incident.merged,
      },
      lag_at_arrival: c.lag_at_arrival && { edge: c.lag_at_arrival.edge, core: c.lag_at_arrival.core },
      score: c.score,
      reasons: c.reasons.map((r) => ({ factor: r.factor, points: r.points, detail: r.detail })),
      delta_ms: c.delta_ms,
      window: { before: c.window.before, after: c.window.after, grace: c.window.grace },
      edge: {
        event_id: c.edge.event_id,
        time: isoTime(c.edge.time),
        rule: c.edge.rule,
        priority: c.edge.priority,
        output: c.edge.output,
        hostname,
        source: c.edge.source,
        tags: c.edge.tags,
      },
      core: {
        event_id: c.core.event_id,
        time: isoTime(c.core.time),
        action: c.core.action,
        principal: c.core.principal,
        principal_id: c.core.principal_id,
        read_only: c.core.read_only,
        error_code: c.core.error_code,
        source_ip: c.core.source_ip,
        region: c.core.region,
        account_id: c.core.account_id,
        target: c.core.target,
      },
    },
  })
}

function correlationMessage(c: Correlation): string {
  const seconds = Math.round(Math.abs(c.delta_ms) / 1000)
  const order = c.delta_ms >= 0 ? `${seconds}s after` : `${seconds}s before`
  const core = `${c.core.action} by ${c.core.principal}`
  return `Agent ${c.agent.id}: ${core} ${order} Falco "${c.edge.rule}" (score ${c.score}).`
}
