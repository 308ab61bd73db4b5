// The revoke webhook body: a CloudEvents 1.0 event in structured JSON mode (schemas/revoke-webhook.schema.json)
// whose data carries the correlation, the incident, the agent's identifiers and the actions a receiver
// should take, in the way AWS and Kubernetes do them. Pure: the decision time is an argument.
import type { Correlation, IdentityFields } from '../schemas/types.ts'

export const revokeEventType = 'dev.nerve.revoke.requested'
export const revokeEventSource = '/nerve/sinks/revoke'
/** Structured mode (CloudEvents HTTP binding §3.2). */
export const revokeContentType = 'application/cloudevents+json; charset=UTF-8'

export type RecommendedAction =
  | {
      type: 'aws.iam.revoke_role_sessions'
      api: 'iam:PutRolePolicy'
      role_name: string
      role_arn?: string
      account_id?: string
      policy_name: 'AWSRevokeOlderSessions'
      policy_document: AwsPolicyDocument
    }
  | {
      type: 'aws.iam.deactivate_access_key'
      api: 'iam:UpdateAccessKey'
      access_key_id: string
      user_name?: string
      status: 'Inactive'
    }
  | {
      type: 'kubernetes.isolate_pod' | 'kubernetes.delete_pod'
      namespace: string
      pod: string
      cluster?: string
    }

type AwsPolicyDocument = {
  Version: '2012-10-17'
  Statement: {
    Effect: 'Deny'
    Action: '*'
    Resource: '*'
    Condition: { DateLessThan: { 'aws:TokenIssueTime': string } }
  }
}

export type RevokeEventData = {
  idempotency_key: string
  decided_at: string
  incident: { id: string }
  agent: { id: string; resolved_by: string; principal: string; identifiers: IdentityFields }
  correlation: Correlation
  recommended_actions: RecommendedAction[]
}

export type RevokeEvent = {
  specversion: '1.0'
  id: string
  source: string
  type: string
  time: string
  subject: string
  datacontenttype: 'application/json'
  data: RevokeEventData
}

/** The event for one revoke decision; `id` is the decision's idempotency key (also the webhook-id). */
export function buildRevokeEvent(
  correlation: Correlation,
  decisionId: string,
  decidedAt: number,
): RevokeEvent {
  const time = new Date(decidedAt).toISOString()
  return {
    specversion: '1.0',
    id: decisionId,
    source: revokeEventSource,
    type: revokeEventType,
    time,
    subject: correlation.agent.id,
    datacontenttype: 'application/json',
    data: {
      idempotency_key: decisionId,
      decided_at: time,
      incident: { id: correlation.incident.id },
      agent: {
        id: correlation.agent.id,
        resolved_by: correlation.agent.resolved_by,
        principal: correlation.core.principal,
        identifiers: correlation.agent.identity,
      },
      correlation,
      recommended_actions: recommendedActions(correlation, time),
    },
  }
}

/**
 * What to cut, from what is known about the agent: the role's sessions issued before now (the console's
 * "Revoke active sessions", an inline AWSRevokeOlderSessions policy), a long-term access key (made
 * Inactive, reversible), and the pod (isolated, or deleted so it stops minting fresh credentials).
 */
export function recommendedActions(correlation: Correlation, time: string): RecommendedAction[] {
  const identity = correlation.agent.identity
  const actions: RecommendedAction[] = []
  const role = roleOf(identity, correlation.core.principal)
  if (role) {
    actions.push({
      type: 'aws.iam.revoke_role_sessions',
      api: 'iam:PutRolePolicy',
      ...role,
      policy_name: 'AWSRevokeOlderSessions',
      policy_document: {
        Version: '2012-10-17',
        Statement: {
          Effect: 'Deny',
          Action: '*',
          Resource: '*',
          Condition: { DateLessThan: { 'aws:TokenIssueTime': time } },
        },
      },
    })
  }
  // Only long-term keys (AKIA…) can be deactivated; temporary ones (ASIA…) die with the role's sessions.
  if (identity.access_key_id?.startsWith('AKIA')) {
    const user = /^arn:aws[\w-]*:iam::\d{12}:user\/(?:.*\/)?([^/]+)$/.exec(identity.principal_arn ?? '')
    actions.push({
      type: 'aws.iam.deactivate_access_key',
      api: 'iam:UpdateAccessKey',
      access_key_id: identity.access_key_id,
      ...(user?.[1] ? { user_name: user[1] } : {}),
      status: 'Inactive',
    })
  }
  if (identity.k8s_namespace && identity.k8s_pod) {
    const pod = {
      namespace: identity.k8s_namespace,
      pod: identity.k8s_pod,
      ...(identity.cluster ? { cluster: identity.cluster } : {}),
    }
    actions.push({ type: 'kubernetes.isolate_pod', ...pod }, { type: 'kubernetes.delete_pod', ...pod })
  }
  return actions
}

type RoleRef = { role_name: string; role_arn?: string; account_id?: string }

/** The IAM role behind the agent's credentials; never a service-linked role (AWS cannot revoke those). */
function roleOf(identity: IdentityFields, principal: string): RoleRef | undefined {
  for (const arn of [identity.role_arn, identity.principal_arn, principal]) {
    const role = /^arn:aws[\w-]*:iam::(\d{12}):role\/(.+)$/.exec(arn ?? '')
    if (role?.[1] && role[2]) {
      if (role[2].startsWith('aws-service-role/')) return undefined
      return { role_name: role[2].split('/').at(-1) as string, role_arn: arn as string, account_id: role[1] }
    }
    const session = /^arn:aws[\w-]*:sts::(\d{12}):assumed-role\/([^/]+)\//.exec(arn ?? '')
    if (session?.[1] && session[2]) {
      if (session[2].startsWith('AWSServiceRole')) return undefined
      return { role_name: session[2], account_id: session[1] }
    }
  }
  return undefined
}
