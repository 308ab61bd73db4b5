// NormalizedEvent → the ECS document indexed into logs-nerve.events-<namespace>. Pure.
// Edge (Falco) alerts follow Elastic's Falco integration (packages/falco). CloudTrail records follow its AWS
// integration (packages/aws cloudtrail) to the letter and go to that integration's data stream,
// logs-aws.cloudtrail-<namespace>, so Elastic's prebuilt AWS rules run on them (ecs-cloudtrail-fields.ts).
// event.ingested is when the sink wrote the document: the timestamp Elastic's own rules look back over.
// Falco output_fields go under nerve.falco.output_fields, a `flattened` field: their dotted, prefix-colliding
// keys (`container.image` and `container.image.repository`) can never cause a mapping conflict there.
import type { CoreFields, EdgeFields, NormalizedEvent } from '../schemas/types.ts'
import { cloudTrailDocumentFields, isCloudTrailRecord } from './ecs-cloudtrail-fields.ts'
import {
  awsUserName,
  compact,
  type EcsDocument,
  ecsVersion,
  falcoSeverity,
  identityFields,
  ipLiteral,
  isHostSource,
  isoTime,
  mergeDocuments,
  threatFromTags,
  uniqueStrings,
} from './ecs-field-mapping.ts'
import { cloudTrailDataStreamFields, dataStreamFields, datasetOf } from './elasticsearch-data-streams.ts'

type Categorization = { kind: 'alert' | 'event' | 'metric'; category: string[]; type: string[] }

export function buildEventDocument(
  event: NormalizedEvent,
  namespace: string,
  ingestedAt: number,
): EcsDocument {
  const record = event.core && isCloudTrailRecord(event.raw) ? event.raw : undefined
  const nerveSide = event.edge ? edgeFields(event.edge) : event.core ? coreFields(event.core) : {}
  const sideFields = record ? mergeDocuments(nerveSide, cloudTrailDocumentFields(record)) : nerveSide
  const identity = identityFields(event.identity)
  const related = relatedOf(event)
  return compact({
    '@timestamp': isoTime(event.time),
    ecs: { version: ecsVersion },
    data_stream: record ? cloudTrailDataStreamFields(namespace) : dataStreamFields('events', namespace),
    ...identity,
    ...sideFields,
    event: {
      ...(sideFields.event as EcsDocument | undefined),
      id: event.id,
      dataset: record ? cloudTrailDataStreamFields(namespace).dataset : datasetOf('events'),
      created: isoTime(event.received_at),
      ingested: isoTime(ingestedAt),
      original: event.raw === undefined ? undefined : JSON.stringify(event.raw),
    },
    cloud: { ...(identity.cloud as EcsDocument | undefined), ...(sideFields.cloud as EcsDocument) },
    related: {
      ...related,
      user: uniqueStrings([
        ...(related.user as string[]),
        ...(((sideFields.related as EcsDocument | undefined)?.user as string[] | undefined) ?? []),
      ]),
    },
    nerve: {
      side: event.side,
      via: event.via,
      agent: { id: event.agent.id, resolved_by: event.agent.resolved_by },
      identity: { ...event.identity },
      time_ns: event.time_ns,
      time_original: event.time_original,
      lag_ms: event.received_at - event.time,
      edge: event.edge && {
        rule: event.edge.rule,
        priority: event.edge.priority,
        source: event.edge.source,
        hostname: event.edge.hostname || undefined,
        internal: event.edge.internal,
      },
      falco: event.edge && { output_fields: event.edge.output_fields },
      core: event.core && nerveCore(event.core),
    },
  })
}

function edgeFields(edge: EdgeFields): EcsDocument {
  const fields = edge.output_fields
  const c = edgeCategorization(edge)
  const action =
    edge.source === 'k8s_audit' ? stringField(fields['ka.verb']) : stringField(fields['evt.type'])
  return {
    event: {
      kind: c.kind,
      category: c.category,
      type: c.type,
      action,
      outcome: edgeOutcome(edge),
      severity: falcoSeverity[edge.priority],
      module: 'falco',
      provider: edge.source || undefined,
    },
    message: edge.output,
    tags: edge.tags,
    rule: { name: edge.rule, ruleset: 'falco' },
    threat: threatFromTags(edge.tags),
    // A Falco alert may name no host: an empty name is left out, as Elastic's integrations drop empty values.
    observer: { hostname: edge.hostname || undefined, product: 'Falco', vendor: 'Falco', type: 'ids' },
    host: isHostSource(edge.source) && edge.hostname ? { name: edge.hostname } : undefined,
    process: edge.process && {
      name: edge.process.name,
      command_line: edge.process.cmdline,
      executable: edge.process.exepath,
      pid: edge.process.pid,
      parent: { name: edge.process.parent },
      user: edge.user && { name: edge.user.name, id: edge.user.uid?.toString() },
    },
    file: edge.file && { path: edge.file.path },
    source: edge.network && { ip: ipLiteral(edge.network.local_ip), port: edge.network.local_port },
    destination: edge.network && { ip: ipLiteral(edge.network.remote_ip), port: edge.network.remote_port },
    network: edge.network && { transport: edge.network.proto?.toLowerCase() },
  }
}

const stringField = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)

const k8sVerbTypes: Record<string, string> = {
  create: 'creation',
  delete: 'deletion',
  deletecollection: 'deletion',
  update: 'change',
  patch: 'change',
  get: 'access',
  list: 'access',
  watch: 'access',
}

/** Falco syscall (evt.type) → ECS category and type, after the Elastic Falco integration's table. */
function syscallCategorization(syscall: string): [string, string] | undefined {
  if (/^execve/.test(syscall)) return ['process', 'start']
  if (/^(connect|accept|listen|bind|socket|sendto|sendmsg|recvfrom|recvmsg)/.test(syscall)) {
    return ['network', 'connection']
  }
  if (/^(creat|mkdir|symlink|link)/.test(syscall)) return ['file', 'creation']
  if (/^(unlink|rmdir)/.test(syscall)) return ['file', 'deletion']
  if (/^(rename|chmod|fchmod|chown|fchown|truncate|ftruncate)/.test(syscall)) return ['file', 'change']
  if (/^(open|read|pread|stat|access)/.test(syscall)) return ['file', 'access']
  return undefined
}

function edgeCategorization(edge: EdgeFields): Categorization {
  if (edge.internal) return { kind: 'metric', category: ['host'], type: ['info'] }
  const category = ['intrusion_detection']
  const type = ['info']
  const add = (c: string, t: string) => {
    if (!category.includes(c)) category.push(c)
    if (!type.includes(t)) type.push(t)
  }
  const verb = stringField(edge.output_fields['ka.verb'])
  if (edge.source === 'k8s_audit') add('api', (verb && k8sVerbTypes[verb]) ?? 'info')
  const syscall = stringField(edge.output_fields['evt.type'])
  const bySyscall = syscall ? syscallCategorization(syscall) : undefined
  if (bySyscall) add(...bySyscall)
  if (edge.network?.remote_ip) add('network', 'connection')
  if (edge.file?.path && !bySyscall) add('file', 'info')
  if (edge.process && !category.includes('process')) add('process', 'info')
  return { kind: 'alert', category, type }
}

function edgeOutcome(edge: EdgeFields): string | undefined {
  const code = edge.output_fields['ka.response.code']
  if (code !== undefined && code !== null) return /^[23]\d\d$/.test(String(code)) ? 'success' : 'failure'
  const res = edge.output_fields['evt.res']
  if (typeof res === 'string') return res === 'SUCCESS' ? 'success' : 'failure'
  return undefined
}

const authenticationActions = new Set([
  'sts:AssumeRole',
  'sts:AssumeRoleWithWebIdentity',
  'sts:AssumeRoleWithSAML',
  'sts:GetSessionToken',
  'sts:GetFederationToken',
  'signin:ConsoleLogin',
  'eks-auth:AssumeRoleForPodIdentity',
])

const creationVerbs = /^(Create|Run|Register|Import|Allocate|Issue)/
const deletionVerbs = /^(Delete|Terminate|Remove|Deregister|Revoke|Release|Leave)/
const accessVerbs = /^(Get|List|Describe|Lookup|Search|Head|BatchGet|Select|Decrypt)/
const changeVerbs = new RegExp(
  '^(Attach|Detach|Put|Update|Modify|Set|Add|Enable|Disable|Change|Tag|Untag|Associate|Disassociate|' +
    'Reset|Upload|Start|Stop|Send|Invoke|Replace|Reboot|Share)',
)

/** The verb of a CloudTrail eventName → ECS event.type under the `api` category. */
function apiVerbType(eventName: string): string {
  if (creationVerbs.test(eventName)) return 'creation'
  if (deletionVerbs.test(eventName)) return 'deletion'
  if (accessVerbs.test(eventName)) return 'access'
  if (changeVerbs.test(eventName)) return 'change'
  return 'info'
}

function coreCategorization(core: CoreFields): Categorization {
  const verb = apiVerbType(core.event_name)
  const category = ['api']
  const type = [verb]
  if (core.action.startsWith('iam:')) {
    category.push('iam')
    if (verb === 'access') type.push('info')
    if (/User/.test(core.event_name)) type.push('user')
    if (/Group/.test(core.event_name)) type.push('group')
  }
  if (authenticationActions.has(core.action)) {
    category.push('authentication')
    type.push('start')
  }
  return { kind: 'event', category, type: uniqueStrings(type) }
}

function coreFields(core: CoreFields): EcsDocument {
  const c = coreCategorization(core)
  const userName = awsUserName(core.principal_arn, core.session_issuer_arn)
  return {
    event: {
      kind: c.kind,
      category: c.category,
      type: c.type,
      action: core.event_name,
      outcome: core.error_code ? 'failure' : 'success',
      module: 'aws',
      provider: core.event_source,
    },
    // user.id is userIdentity.principalId, as Elastic's AWS integration has it (a call delivered by Falco's
    // cloudtrail plugin: ct.user.principalid), never the ARN, which is aws.cloudtrail.user_identity.arn.
    user: {
      name: userName,
      id: core.principal_id,
      roles: core.session_issuer_arn ? [core.session_issuer_arn] : undefined,
    },
    cloud: {
      provider: 'aws',
      account: { id: core.account_id },
      region: core.region,
      service: { name: core.action.split(':')[0] },
    },
    source: core.source_ip ? { address: core.source_ip, ip: ipLiteral(core.source_ip) } : undefined,
    user_agent: { original: core.user_agent },
    aws: { cloudtrail: { user_identity: { arn: core.principal_arn } } },
  }
}

function nerveCore(core: CoreFields): EcsDocument {
  return {
    action: core.action,
    event_type: core.event_type,
    read_only: core.read_only,
    error_code: core.error_code,
    error_message: core.error_message,
    principal_arn: core.principal_arn,
    principal_id: core.principal_id,
    principal_type: core.principal_type,
    session_issuer_arn: core.session_issuer_arn,
    access_key_id: core.access_key_id,
    resources: core.resources,
    by_nerve: core.by_nerve,
    credentials: core.credentials && {
      access_key_id: core.credentials.access_key_id,
      expires: isoTime(core.credentials.expires),
    },
  }
}

function relatedOf(event: NormalizedEvent): EcsDocument {
  const { edge, core, identity } = event
  return {
    // Not Falco's user.name: it comes from the container's /etc/passwd, which the watched agent writes, so
    // it could name a real employee; it stays in process.user.name (Elastic's Falco integration puts no
    // user in related.user either).
    user: uniqueStrings([
      core && awsUserName(core.principal_arn, core.session_issuer_arn),
      // Not the session name: the caller picks it (sts:AssumeRole's RoleSessionName), and it could name
      // someone else; Elastic's AWS integration leaves it out too.
      identity.k8s_service_account,
    ]),
    ip: uniqueStrings([
      ipLiteral(edge?.network?.remote_ip),
      ipLiteral(edge?.network?.local_ip),
      ipLiteral(core?.source_ip),
    ]),
    hosts: uniqueStrings([edge?.hostname, identity.host]),
  }
}
