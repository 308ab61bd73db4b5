// What `nerve setup elasticsearch` installs, as data: an ILM policy, three component templates (settings,
// ECS mappings, nerve.* mappings) and one composable index template per data stream. Pure.
// Mappings are `dynamic: false`: a field nobody mapped stays in _source but is not indexed, so an unknown
// field can never explode the mapping; `ignore_malformed` keeps a document whose value does not fit its type.
// The ECS part maps exactly the ECS fields the builders emit, with ECS 9.4.0 types (checked by a test
// against ecs_flat.yml); free-form maps (Falco output_fields, identities) are `flattened`.

import { ecsVersion } from './ecs-field-mapping.ts'
import {
  cloudTrailDataset,
  dataStreamName,
  datasetOf,
  type IndexedTopic,
  indexedTopics,
} from './elasticsearch-data-streams.ts'

export type FieldMapping = { type: string; [option: string]: unknown }

/** Bumped whenever a template below changes: Elasticsearch keeps it as each template's `version`. */
export const templateVersion = 5

export const ilmPolicyName = 'nerve'

const keyword: FieldMapping = { type: 'keyword', ignore_above: 1024 }
const long: FieldMapping = { type: 'long' }
const float: FieldMapping = { type: 'float' }
const date: FieldMapping = { type: 'date' }
const ip: FieldMapping = { type: 'ip' }
const bool: FieldMapping = { type: 'boolean' }
const text: FieldMapping = { type: 'match_only_text' }
const wildcardWithText: FieldMapping = { type: 'wildcard', fields: { text } }
const keywords = (...names: string[]) => Object.fromEntries(names.map((n) => [n, keyword]))

/** Every ECS field a builder emits, dotted name → mapping (types as in ECS 9.4.0). */
export const ecsFieldMappings: Record<string, FieldMapping> = {
  '@timestamp': date,
  message: text,
  tags: keyword,
  'ecs.version': keyword,
  'data_stream.type': { type: 'constant_keyword' },
  'data_stream.dataset': { type: 'constant_keyword' },
  'data_stream.namespace': { type: 'constant_keyword' },
  ...keywords('event.kind', 'event.category', 'event.type', 'event.action', 'event.outcome', 'event.reason'),
  ...keywords('event.id', 'event.dataset', 'event.module', 'event.provider'),
  'event.severity': long,
  'event.risk_score': float,
  'event.risk_score_norm': float,
  'event.created': date,
  'event.ingested': date,
  'event.start': date,
  'event.end': date,
  'event.duration': long,
  'event.original': { type: 'keyword', index: false, doc_values: false },
  ...keywords('rule.id', 'rule.name', 'rule.ruleset'),
  ...keywords('threat.framework', 'threat.tactic.id', 'threat.tactic.name', 'threat.technique.id'),
  ...keywords(
    'threat.technique.name',
    'threat.technique.subtechnique.id',
    'threat.technique.subtechnique.name',
  ),
  ...keywords('observer.hostname', 'observer.product', 'observer.vendor', 'observer.type', 'host.name'),
  'process.name': keyword,
  'process.executable': keyword,
  'process.command_line': wildcardWithText,
  'process.pid': long,
  ...keywords('process.parent.name', 'process.user.name', 'process.user.id', 'file.path'),
  'source.ip': ip,
  'source.port': long,
  'source.address': keyword,
  'destination.ip': ip,
  'destination.port': long,
  'network.transport': keyword,
  ...keywords('user.name', 'user.id', 'user.roles'),
  'user_agent.original': { ...keyword, fields: { text } },
  ...keywords('cloud.provider', 'cloud.account.id', 'cloud.region', 'cloud.service.name'),
  ...keywords('orchestrator.type', 'orchestrator.namespace', 'orchestrator.cluster.name'),
  ...keywords('orchestrator.resource.type', 'orchestrator.resource.name', 'orchestrator.resource.id'),
  ...keywords('container.id', 'container.image.name', 'container.image.tag'),
  'related.user': keyword,
  'related.ip': ip,
  'related.hosts': keyword,
  ...keywords('tls.version_protocol', 'tls.version', 'tls.cipher', 'tls.client.server_name'),
  'url.original': wildcardWithText,
  'http.response.status_code': long,
}

/** nerve's own fields (events, correlations and revoke outcomes share the `nerve.` namespace). */
export const nerveFieldMappings: Record<string, FieldMapping> = {
  ...keywords('nerve.side', 'nerve.via', 'nerve.agent.id', 'nerve.agent.resolved_by', 'nerve.time_original'),
  'nerve.identity': { type: 'flattened', ignore_above: 1024 },
  'nerve.time_ns': long,
  'nerve.lag_ms': long,
  ...keywords('nerve.edge.event_id', 'nerve.edge.rule', 'nerve.edge.priority', 'nerve.edge.source'),
  ...keywords('nerve.edge.hostname', 'nerve.edge.tags'),
  'nerve.edge.internal': bool,
  'nerve.edge.time': date,
  'nerve.edge.output': text,
  'nerve.falco.output_fields': { type: 'flattened', ignore_above: 1024, depth_limit: 20 },
  ...keywords('nerve.core.event_id', 'nerve.core.action', 'nerve.core.event_type', 'nerve.core.error_code'),
  ...keywords('nerve.core.principal', 'nerve.core.principal_arn', 'nerve.core.principal_type'),
  'nerve.core.principal_id': keyword,
  ...keywords('nerve.core.session_issuer_arn', 'nerve.core.access_key_id', 'nerve.core.resources'),
  ...keywords('nerve.core.source_ip', 'nerve.core.region', 'nerve.core.account_id', 'nerve.core.target'),
  'nerve.core.error_message': text,
  'nerve.core.read_only': bool,
  'nerve.core.by_nerve': bool,
  'nerve.core.time': date,
  'nerve.core.credentials.access_key_id': keyword,
  'nerve.core.credentials.expires': date,
  ...keywords('nerve.rule.id', 'nerve.incident.id', 'nerve.correlation.id', 'nerve.reasons.factor'),
  'nerve.rule.version': keyword,
  ...keywords('nerve.rule.mitre.tactics', 'nerve.rule.mitre.techniques'),
  'nerve.rule.severity': long,
  'nerve.incident.first_seen': date,
  'nerve.incident.last_seen': date,
  'nerve.incident.correlation_count': long,
  'nerve.incident.suppressed_count': long,
  'nerve.incident.signals': keyword,
  'nerve.incident.merged': keyword,
  'nerve.lag_at_arrival.edge': long,
  'nerve.lag_at_arrival.core': long,
  'nerve.rule.revoke': bool,
  'nerve.score': float,
  'nerve.reasons.points': float,
  'nerve.reasons.detail': text,
  'nerve.delta_ms': long,
  'nerve.window.before': long,
  'nerve.window.after': long,
  'nerve.window.grace': long,
  ...keywords(
    'nerve.revoke.decision_id',
    'nerve.revoke.status',
    'nerve.revoke.reason',
    'nerve.revoke.target',
  ),
  'nerve.revoke.detail': text,
  'nerve.revoke.attempts': long,
  'nerve.revoke.http_status': long,
}

const longKeyword: FieldMapping = { type: 'keyword', ignore_above: 8191, fields: { text: { type: 'text' } } }
/**
 * A leaf longer than ignore_above is kept in _source, not indexed: 8,191 characters stay under Lucene's
 * 32,766-byte term in UTF-8, key path included. The document builder keeps requests within depth_limit
 * (ecs-cloudtrail-fields.ts cuts deeper levels to text): ingest accepts deeper (`http.max_depth`).
 */
const flattened: FieldMapping = { type: 'flattened', ignore_above: 8191, depth_limit: 20 }
const cloudtrail = (fields: Record<string, FieldMapping>) =>
  Object.fromEntries(Object.entries(fields).map(([k, v]) => [`aws.cloudtrail.${k}`, v]))

/**
 * The aws.cloudtrail.* fields CloudTrail documents carry, typed as Elastic's AWS integration types them
 * (its data_stream/cloudtrail fields; checked by a test against that list): used when nerve installs the
 * logs-aws.cloudtrail-* template itself, i.e. when the integration is not installed, and in nerve's own
 * data streams, whose correlations (and Falco-delivered CloudTrail calls) name the caller's ARN in
 * aws.cloudtrail.user_identity.arn, to pivot on with the same type across logs-*.
 */
export const awsCloudTrailFieldMappings: Record<string, FieldMapping> = cloudtrail({
  ...keywords('event_version', 'event_category', 'event_type', 'api_version', 'management_event'),
  ...keywords('request_id', 'recipient_account_id', 'shared_event_id', 'vpc_endpoint_id'),
  ...keywords('error_code', 'error_message'),
  ...keywords('user_identity.type', 'user_identity.arn', 'user_identity.access_key_id'),
  ...keywords('user_identity.invoked_by', 'user_identity.session_context.mfa_authenticated'),
  'user_identity.session_context.creation_date': date,
  ...keywords(
    'user_identity.session_context.session_issuer.type',
    'user_identity.session_context.session_issuer.principal_id',
    'user_identity.session_context.session_issuer.arn',
    'user_identity.session_context.session_issuer.account_id',
  ),
  read_only: bool,
  request_parameters: longKeyword,
  response_elements: longKeyword,
  additional_eventdata: longKeyword,
  service_event_details: longKeyword,
  ...keywords('resources.arn', 'resources.account_id', 'resources.type'),
  'console_login.additional_eventdata.mobile_version': bool,
  'console_login.additional_eventdata.login_to': keyword,
  'console_login.additional_eventdata.mfa_used': bool,
  'flattened.request_parameters': flattened,
  'flattened.response_elements': flattened,
  'flattened.additional_eventdata': flattened,
  'flattened.service_event_details': flattened,
})

type Properties = { [name: string]: FieldMapping | { properties: Properties } }

/** `{'a.b': m}` → `{a: {properties: {b: m}}}`. */
export function toProperties(fields: Record<string, FieldMapping>): Properties {
  const root: Properties = {}
  for (const [path, mapping] of Object.entries(fields)) {
    const names = path.split('.')
    let node = root
    for (const name of names.slice(0, -1)) {
      if (!node[name]) node[name] = { properties: {} }
      node = (node[name] as { properties: Properties }).properties
    }
    node[names.at(-1) as string] = mapping
  }
  return root
}

const meta = { managed_by: 'nerve', managed: true }

export const ilmPolicy = {
  _meta: { ...meta, description: 'nerve data streams: roll over at 50 GB per primary shard or 30 days.' },
  phases: {
    hot: { min_age: '0ms', actions: { rollover: { max_primary_shard_size: '50gb', max_age: '30d' } } },
    delete: { min_age: '90d', actions: { delete: {} } },
  },
}

export type ComponentTemplate = { name: string; template: Record<string, unknown> }

export const componentTemplates: readonly ComponentTemplate[] = [
  {
    name: 'nerve-settings',
    template: {
      settings: {
        index: {
          lifecycle: { name: ilmPolicyName },
          codec: 'best_compression',
          mapping: { ignore_malformed: true },
        },
      },
      mappings: { dynamic: false, date_detection: false, numeric_detection: false },
    },
  },
  {
    name: `nerve-ecs-${ecsVersion}-mappings`,
    template: { mappings: { properties: toProperties(ecsFieldMappings) } },
  },
  { name: 'nerve-fields-mappings', template: { mappings: { properties: toProperties(nerveFieldMappings) } } },
  {
    name: 'nerve-aws-cloudtrail-mappings',
    template: { mappings: { properties: toProperties(awsCloudTrailFieldMappings) } },
  },
]

export type IndexTemplate = {
  name: string
  index_patterns: string[]
  data_stream: Record<string, never>
  priority: number
  composed_of: string[]
}

/**
 * Priority above the built-in `logs-*-*` template (100) and Fleet's (up to 200), with room under 1000,
 * as Elastic's docs suggest for custom logs templates (sinks.md §1.4).
 */
export const indexTemplatePriority = 501

/** For logs-aws.cloudtrail-*: yields to Elastic's AWS integration (Fleet installs its templates at 200). */
export const cloudTrailTemplatePriority = 150

export const indexTemplates: readonly IndexTemplate[] = [
  ...indexedTopics.map((topic: IndexedTopic) => ({
    name: datasetOf(topic).replace('.', '-'),
    index_patterns: [dataStreamName(topic, '*')],
    data_stream: {},
    priority: indexTemplatePriority,
    composed_of: componentTemplates.map((c) => c.name),
  })),
  {
    // Below Fleet's integration templates (200), above the built-in logs-*-* (100): while Elastic's AWS
    // integration is not installed this one shapes logs-aws.cloudtrail-*; once it is, the integration's
    // template and ingest pipeline take over for new backing indices, and nerve's documents, which carry
    // event.original and the same fields, come out the same (docs/elastic-security.md).
    name: 'nerve-aws-cloudtrail',
    index_patterns: [`logs-${cloudTrailDataset}-*`],
    data_stream: {},
    priority: cloudTrailTemplatePriority,
    composed_of: componentTemplates.map((c) => c.name),
  },
]

export const templateMeta = { ...meta, ecs_version: ecsVersion }

type Json = Record<string, unknown>
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Deep merge, the later wins a leaf: how Elasticsearch composes the component templates in order. */
function mergeMappings(into: Json, from: Json): Json {
  const merged: Json = { ...into }
  for (const [key, value] of Object.entries(from)) {
    const before = merged[key]
    merged[key] = isObject(before) && isObject(value) ? mergeMappings(before, value) : value
  }
  return merged
}

/**
 * What `nerve setup elasticsearch` applies to the write index of a data stream that exists: the mappings
 * the index template gives a new backing index (its component templates', composed in order), but for
 * `data_stream.*`, constant_keyword fields that index already holds with their values (Fleet leaves them
 * out of such an update too).
 */
export function writeIndexMappings(index: IndexTemplate): Json {
  let mappings: Json = {}
  for (const name of index.composed_of) {
    const component = componentTemplates.find((c) => c.name === name)
    const part = component?.template.mappings
    if (isObject(part)) mappings = mergeMappings(mappings, part)
  }
  const { data_stream: _, ...properties } = mappings.properties as Json
  return { ...mappings, properties }
}
