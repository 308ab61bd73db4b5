// A validated CloudTrail record → one normalized core event. Pure. The id is the eventID (a content hash
// of the record only for hand-written records without one). Credential-issuing calls carry what identity
// stitching needs: the issued accessKeyId and its expiry, and, for EKS workloads, the Kubernetes identity
// that appears only there (IRSA: the web-identity user name; Pod Identity: the session tags).
import type { CloudTrailRecord } from '../schemas/input-validators.ts'
import type { CoreFields, IdentityFields } from '../schemas/types.ts'
import { contentHash } from './content-hash.ts'
import { createWorkloadIssuer, issuerOfProvider } from './eks-oidc-issuer.ts'
import type { NormalizeContext, NormalizeResult, UnresolvedEvent } from './normalized-draft.ts'
import { parseEventTime } from './parse-event-time.ts'
import { requestTarget } from './request-target.ts'
import { revokeRequest } from './revoke-request.ts'

/** Insights records have no eventName or userIdentity: recognized and skipped, never normalized. */
export function isInsightRecord(value: Record<string, unknown>): boolean {
  return (
    value.eventType === 'AwsCloudTrailInsight' ||
    value.eventCategory === 'Insight' ||
    'insightDetails' in value
  )
}

const defaultSessionMs = 3_600_000

export function normalizeCloudTrailRecord(record: CloudTrailRecord, ctx: NormalizeContext): NormalizeResult {
  const time = parseEventTime(record.eventTime)
  if (!time) return { ok: false, problems: [{ path: '/eventTime', message: 'is not a real calendar time' }] }
  const identity = recordIdentity(record, ctx)
  const ui = record.userIdentity ?? {}
  const issuer = ui.sessionContext?.sessionIssuer?.arn
  const core: CoreFields = {
    action: `${record.eventSource.replace(/\.amazonaws\.com$/, '')}:${record.eventName}`,
    event_source: record.eventSource,
    event_name: record.eventName,
    event_type: record.eventType ?? 'AwsApiCall',
    resources: resourceArns(record.resources),
    by_nerve: isSelf(ui.arn, ctx) || isSelf(issuer, ctx) || isSelf(identity.role_arn, ctx),
  }
  // Assigned one by one in the published key order: a generic setter over many object shapes cost more
  // than the rest of the normalization.
  const readOnlyFlag = readOnly(record.readOnly)
  if (readOnlyFlag !== undefined) core.read_only = readOnlyFlag
  const errorCode = nonEmpty(record.errorCode)
  if (errorCode !== undefined) core.error_code = errorCode
  const errorMessage = nonEmpty(record.errorMessage)
  if (errorMessage !== undefined) core.error_message = errorMessage
  const principal = nonEmpty(ui.arn)
  if (principal !== undefined) core.principal_arn = principal
  // What Elastic's AWS integration puts in user.id; a federated user's holds a name its caller chose, so
  // nothing keys identity on it (recordIdentity: ARN, session, access key).
  const principalId = nonEmpty(ui.principalId)
  if (principalId !== undefined) core.principal_id = principalId
  const principalType = nonEmpty(ui.type)
  if (principalType !== undefined) core.principal_type = principalType
  const issuerArn = nonEmpty(issuer)
  if (issuerArn !== undefined) core.session_issuer_arn = issuerArn
  // Only a failed call needs it: it tells a call denied by a revoke of older sessions from one denied to a
  // session issued after the revoke, for another reason (correlate/revoke-confirmations.ts).
  if (errorCode !== undefined) {
    const created = sessionCreated(ui)
    if (created !== undefined) core.session_created = created
  }
  const accessKey = nonEmpty(ui.accessKeyId)
  if (accessKey !== undefined) core.access_key_id = accessKey
  const sourceIp = nonEmpty(record.sourceIPAddress)
  if (sourceIp !== undefined) core.source_ip = sourceIp
  const userAgent = nonEmpty(record.userAgent)
  if (userAgent !== undefined) core.user_agent = userAgent
  const region = nonEmpty(record.awsRegion)
  if (region !== undefined) core.region = region
  if (identity.account_id !== undefined) core.account_id = identity.account_id
  const target = requestTarget(record.requestParameters, core.resources)
  if (target !== undefined) core.target = target
  // Parsed here, once: the correlator reads what the call revokes, never its request (a policy document).
  const revokes = revokeRequest(core.action, record.requestParameters, time.ms, errorCode)
  if (revokes !== undefined) core.revokes = revokes
  const credentials = issuedCredentials(record, time.ms)
  if (credentials !== undefined) core.credentials = credentials
  const event: UnresolvedEvent = {
    id: record.eventID ?? `ct-${contentHash(record)}`,
    side: 'core',
    time: time.ms,
    time_ns: time.ns,
    time_original: record.eventTime,
    received_at: ctx.receivedAt,
    via: ctx.via,
    identity,
    core,
    raw: record,
  }
  // IRSA: the issuer keys the workload's link caps (two clusters' copies of a chart are two workloads).
  if (identity.k8s_service_account !== undefined && record.eventName === 'AssumeRoleWithWebIdentity') {
    const issuer = issuerOfProvider(ui.identityProvider)
    if (issuer !== undefined) event.oidc_issuer = issuer
  }
  return { ok: true, event }
}

/** When the caller's session was issued (sessionContext.attributes.creationDate), epoch ms. */
function sessionCreated(ui: NonNullable<CloudTrailRecord['userIdentity']>): number | undefined {
  const created = ui.sessionContext?.attributes?.creationDate
  if (typeof created !== 'string') return undefined
  const ms = Date.parse(created)
  return Number.isFinite(ms) ? ms : undefined
}

function resourceArns(resources: CloudTrailRecord['resources']): string[] {
  const arns: string[] = []
  for (const resource of resources ?? []) if (typeof resource.ARN === 'string') arns.push(resource.ARN)
  return arns
}

const isSelf = (arn: string | undefined, ctx: NormalizeContext) =>
  arn !== undefined && ctx.isSelfIdentity(arn)

const instanceSession = /^i-[0-9a-zA-Z]{8,17}$/
const serviceAccountUser = /^system:serviceaccount:([^:]+):([^:]+)$/

function recordIdentity(record: CloudTrailRecord, ctx: NormalizeContext): IdentityFields {
  const ui = record.userIdentity ?? {}
  const identity: IdentityFields = {}
  set(identity, 'principal_arn', nonEmpty(ui.arn))
  set(identity, 'access_key_id', nonEmpty(ui.accessKeyId))
  set(identity, 'account_id', nonEmpty(ui.accountId) ?? nonEmpty(record.recipientAccountId))
  const issuer = ui.sessionContext?.sessionIssuer
  const session = /^arn:[^:]+:sts::[^:]*:assumed-role\/[^/]+\/(.+)$/.exec(ui.arn ?? '')?.[1]
  if (issuer?.type === 'Role' || session)
    set(identity, 'role_arn', nonEmpty(issuer?.arn) ?? roleOfSession(ui.arn))
  set(identity, 'session_name', session)
  // The session name is the caller's choice (sts:AssumeRole --role-session-name i-0123…): it names a host
  // only when the record says EC2 delivered the credentials (instance profile, IMDSv1 or v2).
  if (session && instanceSession.test(session) && ui.sessionContext?.ec2RoleDelivery !== undefined)
    identity.host = session
  Object.assign(identity, issuedTo(record, ctx))
  return identity
}

const eksIssuers = createWorkloadIssuer()

/** Who the credentials issued by this call belong to, when the call says so (EKS workloads, EC2 nodes). */
function issuedTo(record: CloudTrailRecord, ctx: NormalizeContext): IdentityFields {
  const params = record.requestParameters ?? {}
  const roleArn = typeof params.roleArn === 'string' ? params.roleArn : undefined
  const sessionName = typeof params.roleSessionName === 'string' ? params.roleSessionName : undefined
  const ui = record.userIdentity ?? {}
  if (record.eventSource !== 'sts.amazonaws.com') return {}
  if (record.eventName === 'AssumeRoleWithWebIdentity') {
    // A service account only when an EKS cluster issued the token (eks-oidc-issuer.ts); any other web
    // identity is an ordinary caller of the role it assumed, whatever its `sub` says.
    const sa = serviceAccountUser.exec(ui.userName ?? '')
    const issuer = issuerOfProvider(ui.identityProvider)
    const workload = sa && issuer !== undefined ? (ctx.workloadIssuer ?? eksIssuers)(issuer) : undefined
    if (!sa || !workload) return compact({ role_arn: roleArn })
    return compact({
      k8s_namespace: sa[1],
      k8s_service_account: sa[2],
      cluster: workload.cluster,
      role_arn: roleArn,
    })
  }
  if (record.eventName !== 'AssumeRole' || ui.type !== 'AWSService') return {}
  if (ui.invokedBy === 'pods.eks.amazonaws.com') {
    const tags = sessionTags(params.tags)
    return compact({
      k8s_namespace: tags['kubernetes-namespace'],
      k8s_service_account: tags['kubernetes-service-account'],
      k8s_pod: tags['kubernetes-pod-name'],
      k8s_pod_uid: tags['kubernetes-pod-uid'],
      cluster: tags['eks-cluster-name'],
      role_arn: roleArn,
    })
  }
  if (ui.invokedBy === 'ec2.amazonaws.com' && sessionName && instanceSession.test(sessionName)) {
    return compact({ host: sessionName, role_arn: roleArn, session_name: sessionName })
  }
  return {}
}

function sessionTags(tags: unknown): Record<string, string> {
  if (!Array.isArray(tags)) return {}
  const out: Record<string, string> = {}
  for (const tag of tags) {
    if (typeof tag?.key === 'string' && typeof tag?.value === 'string') out[tag.key] = tag.value
  }
  return out
}

function issuedCredentials(record: CloudTrailRecord, issuedAt: number): CoreFields['credentials'] {
  const credentials = record.responseElements?.credentials as Record<string, unknown> | undefined
  const keyId = credentials?.accessKeyId
  if (typeof keyId !== 'string' || keyId === '') return undefined
  return { access_key_id: keyId, expires: expiry(credentials?.expiration, record, issuedAt) }
}

/** CloudTrail writes `expiration` as "Apr 16, 2024, 3:20:04 PM" (UTC); fall back to durationSeconds, then 1 h. */
function expiry(expiration: unknown, record: CloudTrailRecord, issuedAt: number): number {
  if (typeof expiration === 'string') {
    const parsed = /[zZ]$|[+-]\d{2}:?\d{2}$/.test(expiration)
      ? Date.parse(expiration)
      : Date.parse(`${expiration} UTC`)
    if (Number.isFinite(parsed) && parsed > issuedAt) return parsed
  }
  const duration = record.requestParameters?.durationSeconds
  if (typeof duration === 'number' && duration > 0) return issuedAt + duration * 1000
  return issuedAt + defaultSessionMs
}

function roleOfSession(arn: string | undefined): string | undefined {
  const m = /^arn:([^:]+):sts::([^:]*):assumed-role\/([^/]+)\//.exec(arn ?? '')
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : undefined
}

function readOnly(value: boolean | string | undefined): boolean | undefined {
  if (typeof value === 'boolean') return value
  if (value === 'true' || value === 'false') return value === 'true'
  return undefined
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}

function set<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value
}

function compact<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}
