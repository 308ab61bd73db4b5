// A CloudTrail record → the fields Elastic's AWS integration gives it (packages/aws, data stream
// cloudtrail: its field list and its default ingest pipeline, read, not copied), so Elastic's prebuilt AWS
// detection rules, which query `event.dataset: aws.cloudtrail`, `event.provider`, `event.action`,
// `event.outcome`, `aws.cloudtrail.*`, `user.name`, `cloud.account.id` and `source.ip`, run on nerve's
// documents unchanged. Pure.
// What the integration does and nerve does too: request_parameters and friends twice, as a string (the
// pipeline's Java map rendering, `{key=value, …}`) and as an object under aws.cloudtrail.flattened.* when
// the string is shorter than 32 766 characters (nerve: UTF-8 bytes, and levels past 20 kept as their
// text, so that no request the agent shapes makes Elasticsearch refuse its document); event.outcome from
// errorCode/errorMessage, or ConsoleLogin's own answer; event.kind `event`, event.type `info` unless the
// integration's categorisation table names the action (IAM actions outside the table: category iam, type
// by verb, as its newer test outputs have it).
// What it does and nerve does not: GeoIP and user-agent parsing, and its entity fields (derived by its own
// pipeline when it is installed, see docs/elastic-security.md).
import { type EcsDocument, ipLiteral, isoTime, uniqueStrings } from './ecs-field-mapping.ts'

type Json = Record<string, unknown>

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)
const keywordOf = (v: unknown): string | undefined =>
  typeof v === 'string' ? str(v) : typeof v === 'boolean' || typeof v === 'number' ? String(v) : undefined

/** Is this raw item a CloudTrail record (and not, say, a Falco alert of the aws_cloudtrail source)? */
export function isCloudTrailRecord(raw: unknown): raw is Json {
  return isObject(raw) && typeof raw.eventVersion === 'string' && typeof raw.eventSource === 'string'
}

/** What Elasticsearch's ingest pipeline writes for `map.toString()`: `{k=v, list=[a, b], o={x=y}}`. */
export function javaMapString(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(javaMapString).join(', ')}]`
  if (isObject(value)) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${k}=${javaMapString(v)}`)
      .join(', ')}}`
  }
  return value === null ? 'null' : String(value)
}

/**
 * Lucene's longest term, in UTF-8 bytes. A flattened field indexes each leaf as a term of its key path and
 * value: a copy whose text is shorter than this in bytes holds no longer term (every key on the path and
 * the value are in the text). The integration compares characters, and a 3-byte character counts one:
 * 11,000 '€' in a policy made a term Elasticsearch refused, and the whole CloudTrail document with it.
 */
const flattenedLimitBytes = 32_766
/**
 * Nesting a flattened field accepts (Elasticsearch's default `depth_limit`, as in the integration's
 * template and nerve's): deeper, the document is refused; ingest accepts 64 levels (`http.max_depth`).
 */
export const flattenedDepthLimit = 20

/** The (string, flattened object) pair for requestParameters, responseElements, …; strings only as they are. */
function twice(value: unknown): { text?: string; object?: Json } {
  if (value === undefined || value === null) return {}
  const text = typeof value === 'string' ? value : javaMapString(value)
  if (!isObject(value) || Buffer.byteLength(text) >= flattenedLimitBytes) return { text }
  return { text, object: deeperThan(value, flattenedDepthLimit) ? (cutDeeper(value, 1) as Json) : value }
}

/** Whether objects and arrays nest in `value` more than `levels` deep (the value itself is one). */
function deeperThan(value: unknown, levels: number): boolean {
  if (typeof value !== 'object' || value === null) return false
  if (levels === 0) return true
  for (const child of Array.isArray(value) ? value : Object.values(value))
    if (deeperThan(child, levels - 1)) return true
  return false
}

/**
 * A copy of `value` (at nesting `level`) whose objects and arrays below flattenedDepthLimit are their text
 * (as request_parameters renders them): still searchable, never a refused document. Arrays count as a
 * level, though Elasticsearch counts only objects: never deeper than it accepts.
 */
function cutDeeper(value: unknown, level: number): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (level > flattenedDepthLimit) return javaMapString(value)
  if (Array.isArray(value)) return value.map((child) => cutDeeper(child, level + 1))
  return Object.fromEntries(Object.entries(value).map(([k, child]) => [k, cutDeeper(child, level + 1)]))
}

type Category = { category: string[]; type: string[] }
const iamUser = (t: string): Category => ({ category: ['iam'], type: ['user', t] })
const iamGroup = (t: string): Category => ({ category: ['iam'], type: ['group', t] })
const iamAdmin = (t: string): Category => ({ category: ['iam'], type: ['admin', t] })

/** The integration's categorisation table (action → category and type); other actions: type info. */
const categorisation: Record<string, Category> = {
  AddUserToGroup: iamGroup('change'),
  AssumeRole: { category: ['authentication'], type: ['info'] },
  AttachGroupPolicy: iamGroup('change'),
  AttachUserPolicy: iamUser('change'),
  ChangePassword: iamUser('change'),
  ConsoleLogin: { category: ['authentication'], type: ['info'] },
  CreateAccessKey: iamUser('change'),
  CreateBucket: { category: ['file'], type: ['creation'] },
  CreateGroup: iamGroup('creation'),
  CreateKeyPair: iamAdmin('creation'),
  CreateUser: iamUser('creation'),
  CreateVirtualMFADevice: iamUser('change'),
  DeactivateMFADevice: iamUser('change'),
  DeleteAccessKey: iamUser('change'),
  DeleteBucket: { category: ['file'], type: ['deletion'] },
  DeleteGroup: iamGroup('deletion'),
  DeleteGroupPolicy: iamGroup('change'),
  DeleteSSHPublicKey: iamUser('change'),
  DeleteUser: iamUser('deletion'),
  DeleteUserPermissionsBoundary: iamUser('change'),
  DeleteUserPolicy: iamUser('change'),
  DeleteVirtualMFADevice: iamUser('change'),
  DetachGroupPolicy: iamGroup('change'),
  DetachUserPolicy: iamUser('change'),
  EnableMFADevice: iamUser('change'),
  GetGroup: iamGroup('info'),
  GetGroupPolicy: iamGroup('info'),
  GetUser: iamUser('info'),
  GetUserPolicy: iamUser('info'),
  ListAttachedGroupPolicies: iamGroup('info'),
  ListAttachedUserPolicies: iamUser('info'),
  ListGroupPolicies: iamGroup('info'),
  ListGroups: iamGroup('info'),
  ListGroupsForUser: iamUser('info'),
  ListUserPolicies: iamUser('info'),
  ListUserTags: iamUser('info'),
  ListUsers: iamUser('info'),
  PutGroupPolicy: iamGroup('change'),
  PutUserPermissionsBoundary: iamUser('change'),
  PutUserPolicy: iamUser('change'),
  RemoveUserFromGroup: iamGroup('change'),
  SetDefaultPolicyVersion: iamAdmin('change'),
  SetSecurityTokenServicePreferences: iamAdmin('change'),
  TagUser: iamUser('change'),
  UntagUser: iamUser('change'),
  UpdateAccessKey: iamUser('change'),
  UpdateAccountPasswordPolicy: iamAdmin('change'),
  UpdateGroup: iamGroup('change'),
  UpdateLoginProfile: iamUser('change'),
  UpdateRole: iamAdmin('change'),
  UpdateSSHPublicKey: iamUser('change'),
  UpdateUser: iamUser('change'),
}

/** IAM actions outside the table: category iam, type by verb, as the integration's newer test outputs show. */
function categoryOf(r: Json): Category {
  const action = String(r.eventName)
  const listed = categorisation[action]
  if (listed) return listed
  if (r.eventSource !== 'iam.amazonaws.com') return { category: [], type: ['info'] }
  if (/^Create/.test(action)) return { category: ['iam'], type: ['creation'] }
  if (/^Delete/.test(action)) return { category: ['iam'], type: ['deletion'] }
  if (/^(Get|List|Generate|Simulate)/.test(action)) return { category: ['iam'], type: ['info'] }
  return { category: ['iam'], type: ['change'] }
}

function outcomeOf(r: Json, response: Json | undefined): string {
  if (r.eventName === 'ConsoleLogin' && typeof response?.ConsoleLogin === 'string') {
    return response.ConsoleLogin.toLowerCase()
  }
  return r.errorCode !== undefined || r.errorMessage !== undefined ? 'failure' : 'success'
}

function resourcesOf(value: unknown): Json[] | undefined {
  if (!Array.isArray(value)) return undefined
  const unique = new Map<string, Json>()
  for (const r of value) {
    if (!isObject(r)) continue
    const arn = str(r.ARN ?? r.arn)
    const accountId = str(r.accountId ?? r.account_id)
    const type = str(r.type)
    unique.set(`${arn}_${accountId}_${type}`, { arn, account_id: accountId, type })
  }
  return [...unique.values()]
}

function consoleLoginOf(r: Json): Json | undefined {
  const extra = isObject(r.additionalEventData) ? r.additionalEventData : undefined
  if (r.eventName !== 'ConsoleLogin' || !extra) return undefined
  const yesNo = (v: unknown) => (typeof v === 'string' ? v !== 'No' : undefined)
  return {
    additional_eventdata: {
      mobile_version: yesNo(extra.MobileVersion),
      login_to: str(extra.LoginTo),
      mfa_used: yesNo(extra.MFAUsed),
    },
  }
}

/** ECS fields the integration sets from a record, with aws.cloudtrail.*; merged over nerve's own. */
export function cloudTrailDocumentFields(r: Json): EcsDocument {
  const identity = isObject(r.userIdentity) ? r.userIdentity : {}
  const session = isObject(identity.sessionContext) ? identity.sessionContext : {}
  const attributes = isObject(session.attributes) ? session.attributes : {}
  const issuer = isObject(session.sessionIssuer) ? session.sessionIssuer : {}
  const response = isObject(r.responseElements) ? r.responseElements : undefined
  const request = twice(r.requestParameters)
  const responses = twice(r.responseElements)
  const additional = twice(r.additionalEventData)
  const serviceDetails = twice(r.serviceEventDetails)
  const created = str(attributes.creationDate)
  const createdMs = created ? Date.parse(created) : Number.NaN
  const tls = isObject(r.tlsDetails) ? r.tlsDetails : undefined
  const tlsVersion = str(tls?.tlsVersion)?.match(/^([A-Za-z]+)v(.+)$/)
  // The integration's order: the session issuer's user name (a role's, for an assumed role) wins.
  const userName = str(issuer.userName) ?? str(identity.userName)
  const c = categoryOf(r)
  const sourceAddress = str(r.sourceIPAddress)
  return {
    event: {
      kind: 'event',
      category: c.category,
      type: c.type,
      action: str(r.eventName),
      outcome: outcomeOf(r, response),
      provider: str(r.eventSource),
      id: str(r.eventID),
      module: 'aws',
    },
    user: { name: userName, id: str(identity.principalId) },
    cloud: { account: { id: str(identity.accountId) }, region: str(r.awsRegion) },
    source: sourceAddress ? { address: sourceAddress, ip: ipLiteral(sourceAddress) } : undefined,
    user_agent: { original: str(r.userAgent) },
    tls: tls && {
      version_protocol: tlsVersion?.[1]?.toLowerCase(),
      version: tlsVersion?.[2],
      cipher: str(tls.cipherSuite),
      client: { server_name: str(tls.clientProvidedHostHeader) },
    },
    related: { user: uniqueStrings([str(identity.userName), userName]) },
    aws: {
      cloudtrail: {
        event_version: str(r.eventVersion),
        event_category: str(r.eventCategory),
        event_type: str(r.eventType),
        api_version: str(r.apiVersion),
        management_event: keywordOf(r.managementEvent),
        read_only: typeof r.readOnly === 'boolean' ? r.readOnly : undefined,
        request_id: str(r.requestID),
        recipient_account_id: str(r.recipientAccountId),
        shared_event_id: str(r.sharedEventID),
        vpc_endpoint_id: str(r.vpcEndpointId),
        error_code: str(r.errorCode),
        error_message: str(r.errorMessage),
        user_identity: {
          type: str(identity.type),
          arn: str(identity.arn),
          access_key_id: str(identity.accessKeyId),
          invoked_by: str(identity.invokedBy),
          session_context: {
            mfa_authenticated: keywordOf(attributes.mfaAuthenticated),
            creation_date: Number.isFinite(createdMs) ? isoTime(createdMs) : undefined,
            session_issuer: {
              type: str(issuer.type),
              principal_id: str(issuer.principalId),
              arn: str(issuer.arn),
              account_id: str(issuer.accountId),
            },
          },
        },
        request_parameters: request.text,
        response_elements: responses.text,
        additional_eventdata: additional.text,
        service_event_details: serviceDetails.text,
        resources: resourcesOf(r.resources),
        console_login: consoleLoginOf(r),
        flattened: {
          request_parameters: request.object,
          response_elements: responses.object,
          additional_eventdata: additional.object,
          service_event_details: serviceDetails.object,
        },
      },
    },
  }
}
