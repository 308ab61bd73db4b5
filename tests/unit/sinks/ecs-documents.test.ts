// The document builders against the ECS 9.4.0 definitions (tests/fixtures/ecs/ecs-fields.yml): every field
// they emit exists in ECS with the type our mapping gives it, or lives under `nerve.` and is mapped; every
// categorization value is an allowed one; every event.type is expected for one of the event's categories.
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { alertSeverity, buildCorrelationDocument } from '../../../sinks/ecs-correlation-document.ts'
import { buildEventDocument } from '../../../sinks/ecs-event-document.ts'
import { type EcsDocument, imageFields } from '../../../sinks/ecs-field-mapping.ts'
import { buildRevokeDocument } from '../../../sinks/ecs-revoke-document.ts'
import {
  awsCloudTrailFieldMappings,
  ecsFieldMappings,
  type FieldMapping,
  nerveFieldMappings,
} from '../../../sinks/elasticsearch-templates.ts'
import {
  attachRolePolicy,
  correlation,
  createAccessKey,
  deniedPasswordData,
  events,
  k8sAuditPatch,
  revokeOutcomes,
  shadowRead,
  shellInContainer,
} from './ecs-sample-events.ts'

/** When the sink writes the documents: event.ingested. */
const ingestedAt = Date.UTC(2026, 0, 2, 3, 4, 5)

type EcsField = {
  type: string
  normalize?: string[]
  allowed_values?: { name: string; expected_event_types?: string[] }[]
}
const ecs: Record<string, EcsField> = parse(
  readFileSync(resolve(import.meta.dirname, '../../fixtures/ecs/ecs-fields.yml'), 'utf8'),
)
/** Elastic's AWS integration's aws.cloudtrail.* fields and types (tests/fixtures/elasticsearch). */
const integrationFields: Record<string, string> = JSON.parse(
  readFileSync(
    resolve(import.meta.dirname, '../../fixtures/elasticsearch/aws-cloudtrail-integration-fields.json'),
    'utf8',
  ),
).fields
const allMappings: Record<string, FieldMapping> = {
  ...ecsFieldMappings,
  ...nerveFieldMappings,
  ...awsCloudTrailFieldMappings,
}
const flattenedRoots = Object.keys(allMappings).filter((f) => allMappings[f]?.type === 'flattened')

/** Leaf paths and their values; arrays of objects are walked into, flattened fields are leaves. */
function leaves(doc: EcsDocument, prefix = ''): [string, unknown][] {
  return Object.entries(doc).flatMap(([key, value]): [string, unknown][] => {
    const path = prefix ? `${prefix}.${key}` : key
    if (flattenedRoots.includes(path)) return [[path, value]]
    const items = Array.isArray(value) ? value : [value]
    if (items.every((v) => typeof v === 'object' && v !== null)) {
      return items.flatMap((v) => leaves(v as EcsDocument, path))
    }
    return [[path, value]]
  })
}

const valueFits: Record<string, (v: unknown) => boolean> = {
  keyword: (v) => typeof v === 'string',
  constant_keyword: (v) => typeof v === 'string',
  wildcard: (v) => typeof v === 'string',
  match_only_text: (v) => typeof v === 'string',
  long: (v) => Number.isSafeInteger(v),
  float: (v) => typeof v === 'number' && Number.isFinite(v),
  boolean: (v) => typeof v === 'boolean',
  date: (v) => typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(v),
  ip: (v) => typeof v === 'string' && isIP(v) !== 0,
  flattened: (v) => typeof v === 'object' && v !== null,
}

function problemsOf(doc: EcsDocument): string[] {
  const problems: string[] = []
  for (const [path, value] of leaves(doc)) {
    const mapping = allMappings[path]
    if (!mapping) {
      problems.push(`${path}: not mapped by nerve's templates`)
      continue
    }
    if (path.startsWith('aws.')) {
      const type = integrationFields[path]
      if (!type) problems.push(`${path}: not a field of Elastic's AWS integration`)
      else if (type !== mapping.type)
        problems.push(`${path}: integration type ${type}, mapped ${mapping.type}`)
    } else if (!path.startsWith('nerve.')) {
      const field = ecs[path]
      if (!field) problems.push(`${path}: not an ECS field`)
      else if (field.type !== mapping.type)
        problems.push(`${path}: ECS type ${field.type}, mapped ${mapping.type}`)
    }
    for (const v of Array.isArray(value) ? value : [value]) {
      if (!valueFits[mapping.type]?.(v))
        problems.push(`${path}: ${JSON.stringify(v)} is not a ${mapping.type}`)
    }
  }
  return problems
}

const allowed = (field: string): string[] => (ecs[field]?.allowed_values ?? []).map((v) => v.name)

function categorizationProblems(doc: EcsDocument): string[] {
  const event = doc.event as { kind: string; category: string[]; type: string[]; outcome?: string }
  const problems: string[] = []
  if (!allowed('event.kind').includes(event.kind)) problems.push(`event.kind ${event.kind}`)
  // The AWS integration leaves event.category out for actions outside its table, as ECS allows.
  if (!(event.category === undefined || Array.isArray(event.category)) || !Array.isArray(event.type)) {
    problems.push('category/type not arrays')
  }
  const expected = new Set<string>()
  for (const category of event.category ?? []) {
    const value = ecs['event.category']?.allowed_values?.find((v) => v.name === category)
    if (!value) problems.push(`event.category ${category}`)
    for (const t of value?.expected_event_types ?? []) expected.add(t)
  }
  for (const type of event.type) {
    if (!allowed('event.type').includes(type)) problems.push(`event.type ${type}`)
    else if (event.category && !expected.has(type))
      problems.push(`event.type ${type} not expected for ${event.category}`)
  }
  if (event.outcome !== undefined && !allowed('event.outcome').includes(event.outcome)) {
    problems.push(`event.outcome ${event.outcome}`)
  }
  return problems
}

const documents: [string, EcsDocument][] = [
  ...[...events, k8sAuditPatch].map((e): [string, EcsDocument] => [
    `event ${e.id}`,
    buildEventDocument(e, 'default', ingestedAt),
  ]),
  [
    'event issuing credentials',
    buildEventDocument(
      {
        ...attachRolePolicy,
        core: {
          ...(attachRolePolicy.core as NonNullable<typeof attachRolePolicy.core>),
          credentials: { access_key_id: 'ASIANQQHHS551LWULIWD', expires: Date.parse('2024-08-01T14:37:41Z') },
        },
      },
      'default',
      ingestedAt,
    ),
  ],
  ['correlation', buildCorrelationDocument(correlation, 'default', ingestedAt)],
  ...revokeOutcomes.map((o): [string, EcsDocument] => [
    `revoke ${o.status}`,
    buildRevokeDocument(o, 'default', ingestedAt),
  ]),
]

describe('ECS documents', () => {
  it('maps every ECS field with its ECS 9.4.0 type', () => {
    const wrong = Object.entries(ecsFieldMappings)
      .filter(([field, mapping]) => ecs[field]?.type !== mapping.type)
      .map(([field, mapping]) => `${field}: ${mapping.type} vs ECS ${ecs[field]?.type}`)
    expect(wrong).toEqual([])
  })

  it("maps every aws.cloudtrail field with the type Elastic's AWS integration gives it", () => {
    const wrong = Object.entries(awsCloudTrailFieldMappings)
      .filter(([field, mapping]) => integrationFields[field] !== mapping.type)
      .map(([field, mapping]) => `${field}: ${mapping.type} vs integration ${integrationFields[field]}`)
    expect(wrong).toEqual([])
  })

  it.each(documents)(
    '%s: every field is ECS, aws.cloudtrail.* or nerve.*, mapped, with a value of its type',
    (_name, doc) => {
      expect(problemsOf(doc)).toEqual([])
      expect((doc.event as { ingested?: string }).ingested).toBe(new Date(ingestedAt).toISOString())
    },
  )

  it.each(documents)(
    '%s: carries the fields Elastic Security requires, with allowed values',
    (_name, doc) => {
      expect(doc).toMatchObject({ ecs: { version: '9.4.0' }, '@timestamp': expect.any(String) })
      expect(categorizationProblems(doc)).toEqual([])
    },
  )

  it('stamps each document with its data stream', () => {
    expect(documents.map(([, d]) => (d.data_stream as { dataset: string }).dataset)).toEqual([
      ...events.map((e) => (e.core ? 'aws.cloudtrail' : 'nerve.events')),
      'nerve.events',
      'aws.cloudtrail',
      'nerve.correlations',
      ...revokeOutcomes.map(() => 'nerve.revokes'),
    ])
    expect(buildEventDocument(shellInContainer, 'prod', ingestedAt)).toMatchObject({
      data_stream: { type: 'logs', dataset: 'nerve.events', namespace: 'prod' },
      event: { dataset: 'nerve.events' },
    })
  })
})

describe('edge (Falco) event documents', () => {
  it('map a container shell alert to process, container, orchestrator and MITRE fields', () => {
    const doc = buildEventDocument(shellInContainer, 'default', ingestedAt)
    expect(doc).toMatchObject({
      '@timestamp': '2023-05-25T13:44:05.478Z',
      message: shellInContainer.edge?.output,
      event: {
        kind: 'alert',
        category: ['intrusion_detection', 'process'],
        type: ['info'],
        severity: 5,
        module: 'falco',
        provider: 'syscall',
        id: shellInContainer.id,
        created: '2023-05-25T13:44:05.912Z',
      },
      rule: { name: 'Terminal shell in container', ruleset: 'falco' },
      threat: { framework: 'MITRE ATT&CK', tactic: { name: ['Execution'] } },
      host: { name: 'falco-xczjd' },
      process: { name: 'sh', command_line: 'sh -c clear; (bash || ash || sh)', parent: { name: 'runc' } },
      container: { id: 'ee97d9c4186f', image: { name: 'docker.io/library/alpine' } },
      orchestrator: { type: 'kubernetes', namespace: 'default', resource: { type: 'pod', name: 'kubecon' } },
      nerve: { side: 'edge', agent: { id: 'default/kubecon' }, lag_ms: 434, edge: { priority: 'critical' } },
    })
    expect(JSON.parse(String((doc.event as EcsDocument).original))).toEqual(shellInContainer.raw)
  })

  it('map a sensitive file read to file access, technique id and tactic', () => {
    const doc = buildEventDocument(shadowRead, 'default', ingestedAt)
    expect(doc).toMatchObject({
      event: {
        category: ['intrusion_detection', 'file', 'process'],
        type: ['info', 'access'],
        action: 'openat',
        severity: 3,
      },
      file: { path: '/etc/shadow' },
      process: { executable: '/usr/bin/cat', user: { name: 'root', id: '0' } },
      threat: { technique: { id: ['T1555'] }, tactic: { name: ['Credential Access'] } },
      related: { hosts: ['x86'] },
    })
    expect(doc.related).not.toHaveProperty('user')
    expect(doc.container).toBeUndefined()
  })

  it('map a Kubernetes audit alert to an api change, with Falco only as the observer', () => {
    const doc = buildEventDocument(k8sAuditPatch, 'default', ingestedAt)
    expect(doc).toMatchObject({
      event: {
        category: ['intrusion_detection', 'api'],
        type: ['info', 'change'],
        action: 'patch',
        outcome: 'success',
        provider: 'k8s_audit',
      },
      observer: { hostname: 'my-pool-1-node-921b61', product: 'Falco' },
      nerve: { falco: { output_fields: { 'ka.verb': 'patch', 'ka.response.code': '200' } } },
    })
    expect(doc.host).toBeUndefined()
  })

  it('keep output_fields whole under a flattened field, prefix-colliding dotted keys included', () => {
    const outputFields = {
      'container.image': 'docker.io/library/alpine:3.19',
      'container.image.repository': 'docker.io/library/alpine',
      'proc.pid': 4242,
      'proc.pid.ts': '1746622234502309868',
      'fd.sip': '10.0.0.1',
      'fd.sip.name': 'kubernetes.default',
    }
    const event = {
      ...shadowRead,
      edge: { ...(shadowRead.edge as NonNullable<typeof shadowRead.edge>), output_fields: outputFields },
    }
    const doc = buildEventDocument(event, 'default', ingestedAt)
    expect((doc.nerve as EcsDocument).falco).toEqual({ output_fields: outputFields })
    expect(Object.keys(doc).filter((k) => k.includes('.'))).toEqual([])
    expect(problemsOf(doc)).toEqual([])
  })

  it('index Falco internal messages as metrics, never alerts', () => {
    const internal = {
      ...shadowRead,
      edge: { ...(shadowRead.edge as NonNullable<typeof shadowRead.edge>), internal: true },
    }
    expect(buildEventDocument(internal, 'default', ingestedAt).event).toMatchObject({
      kind: 'metric',
      category: ['host'],
      type: ['info'],
    })
  })
})

describe('container images', () => {
  it.each([
    ['docker.io/library/alpine', { name: 'docker.io/library/alpine' }],
    ['ghcr.io/acme/data-cleaner:1.4.2', { name: 'ghcr.io/acme/data-cleaner', tag: ['1.4.2'] }],
    ['localhost:5000/agent', { name: 'localhost:5000/agent' }],
    ['localhost:5000/agent:v2@sha256:0f1e', { name: 'localhost:5000/agent', tag: ['v2'] }],
    ['alpine@sha256:0f1e', { name: 'alpine' }],
  ])('%s → container.image', (image, expected) => {
    expect(imageFields(image)).toEqual(expected)
  })
})

describe('core (CloudTrail) event documents', () => {
  it("map an IAM write as Elastic's AWS integration does, into its data stream, with aws.cloudtrail.*", () => {
    expect(buildEventDocument(attachRolePolicy, 'default', ingestedAt)).toMatchObject({
      '@timestamp': '2024-08-01T13:37:41.000Z',
      data_stream: { type: 'logs', dataset: 'aws.cloudtrail', namespace: 'default' },
      event: {
        kind: 'event',
        category: ['iam'],
        type: ['change'],
        action: 'AttachRolePolicy',
        outcome: 'success',
        provider: 'iam.amazonaws.com',
        module: 'aws',
        dataset: 'aws.cloudtrail',
        id: attachRolePolicy.id,
        ingested: '2026-01-02T03:04:05.000Z',
      },
      // user.id is the principal id, as the integration has it; the ARN is aws.cloudtrail.user_identity.arn.
      user: { name: 'christophe', id: 'AIDAK4TRC24VBN0JX8JX' },
      aws: {
        cloudtrail: {
          event_category: 'Management',
          management_event: 'true',
          read_only: false,
          user_identity: { type: 'IAMUser', arn: 'arn:aws:iam::609418236337:user/christophe' },
          request_parameters:
            '{policyArn=arn:aws:iam::aws:policy/AdministratorAccess, roleName=stratus-red-team-malicious-iam-role}',
          flattened: { request_parameters: { policyArn: 'arn:aws:iam::aws:policy/AdministratorAccess' } },
        },
      },
      tls: { version_protocol: 'tls', version: '1.3', client: { server_name: 'iam.amazonaws.com' } },
      cloud: {
        provider: 'aws',
        account: { id: '609418236337' },
        region: 'sagov-west-2r',
        service: { name: 'iam' },
      },
      source: { ip: '209.209.254.254', address: '209.209.254.254' },
      user_agent: { original: 'stratus-red-team_e2808a95-acc5-4508-b083-d31d6f4315d9' },
      related: { user: ['christophe'], ip: ['209.209.254.254'] },
      nerve: { side: 'core', lag_ms: 314_000, core: { action: 'iam:AttachRolePolicy', by_nerve: false } },
    })
  })

  it('keep a source address that is not an IP literal out of source.ip', () => {
    const doc = buildEventDocument(createAccessKey, 'default', ingestedAt)
    expect(doc.source).toEqual({ address: '211.9.016.253' })
    expect(doc.related).toEqual({ user: ['christophe'] })
    expect(doc.event).toMatchObject({ category: ['iam'], type: ['user', 'change'] })
  })

  it('name the role of an assumed-role session and mark a denied call as failed', () => {
    expect(buildEventDocument(deniedPasswordData, 'default', ingestedAt)).toMatchObject({
      event: { type: ['info'], outcome: 'failure', provider: 'ec2.amazonaws.com' },
      aws: {
        cloudtrail: { error_code: 'Client.UnauthorizedOperation', user_identity: { type: 'AssumedRole' } },
      },
      user: {
        name: 'stratus-red-team-ec2-get-password-data-role',
        roles: ['arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role'],
      },
      // Not the session name (aws-go-sdk-…): the caller chose it.
      related: { user: ['stratus-red-team-ec2-get-password-data-role'] },
      nerve: { core: { error_code: 'Client.UnauthorizedOperation', read_only: true } },
    })
  })
})

describe('correlation documents', () => {
  it("carry the severity the External Alerts rule maps, for each of Elastic's risk-score bands", () => {
    const bands = [0, 21, 22, 47, 48, 73, 74, 100].map((score) => alertSeverity(score))
    expect(bands).toEqual([21, 21, 47, 47, 73, 73, 99, 99])
    const doc = buildCorrelationDocument({ ...correlation, score: 55 }, 'default', ingestedAt)
    expect(doc.event).toMatchObject({
      kind: 'alert',
      severity: 73,
      risk_score: 55,
      ingested: '2026-01-02T03:04:05.000Z',
    })
    expect((doc.nerve as { rule: { severity: number } }).rule.severity).toBe(correlation.rule.severity)
  })

  it('are alerts scored 0–100 that keep both halves and the incident', () => {
    expect(buildCorrelationDocument(correlation, 'default', ingestedAt)).toMatchObject({
      '@timestamp': '2023-05-25T13:45:35.478Z',
      event: {
        kind: 'alert',
        id: correlation.id,
        // The External Alerts rule maps only 21 / 47 / 73 / 99; 92 is in Elastic's critical band.
        severity: 99,
        risk_score: 92,
        risk_score_norm: 92,
        start: '2023-05-25T13:44:05.478Z',
        end: '2023-05-25T13:45:35.478Z',
        duration: 90_000_000_000,
      },
      rule: { id: 'shell-then-iam-write', ruleset: 'nerve' },
      user: { name: 'christophe' },
      orchestrator: { namespace: 'default', resource: { name: 'kubecon' } },
      cloud: { account: { id: '609418236337' } },
      nerve: {
        agent: { id: 'data-cleaner', resolved_by: 'registry' },
        incident: {
          id: correlation.incident.id,
          first_seen: '2023-05-25T13:44:05.478Z',
          correlation_count: 1,
          signals: ['Terminal shell in container', 'iam:AttachRolePolicy'],
        },
        rule: { version: '3f9a0c1d2e4b' },
        lag_at_arrival: { core: 314_000 },
        edge: { rule: 'Terminal shell in container', time: '2023-05-25T13:44:05.478Z' },
        core: { action: 'iam:AttachRolePolicy', event_id: attachRolePolicy.id },
        delta_ms: 90_000,
        reasons: [{ factor: 'rule_severity' }, { factor: 'edge_priority' }],
      },
    })
  })

  // Elastic's integrations drop empty values; "" in host.name matches nothing and pollutes every terms view.
  it('leave host and observer names out when the Falco alert names no host', () => {
    const nameless = { ...correlation, edge: { ...correlation.edge, hostname: '' } }
    const doc = buildCorrelationDocument(nameless, 'default', ingestedAt)
    expect(doc.host).toBeUndefined()
    expect(doc.observer).toEqual({ product: 'Falco', vendor: 'Falco', type: 'ids' })
    expect((doc.related as { hosts?: string[] }).hosts ?? []).not.toContain('')
    expect((doc.nerve as { edge: { hostname?: string } }).edge.hostname).toBeUndefined()
  })

  it("carry the rule's ATT&CK tactics and techniques as threat.*, with those of the Falco tags", () => {
    const doc = buildCorrelationDocument(correlation, 'default', ingestedAt)
    expect(correlation.edge.tags).toContain('mitre_execution')
    expect(doc.threat).toEqual({
      framework: 'MITRE ATT&CK',
      tactic: { id: ['TA0004', 'TA0002'], name: ['Privilege Escalation', 'Execution'] },
      technique: {
        id: ['T1098'],
        name: ['Account Manipulation'],
        subtechnique: { id: ['T1098.003'], name: ['Additional Cloud Roles'] },
      },
    })
    expect(doc.nerve).toMatchObject({ rule: { mitre: { tactics: ['TA0004'], techniques: ['T1098.003'] } } })
  })
})

describe('revoke outcome documents', () => {
  it('record every decision with its reason, sent or not', () => {
    const docs = revokeOutcomes.map((o) => buildRevokeDocument(o, 'default', ingestedAt).event as EcsDocument)
    expect(docs.map((e) => [e.action, e.outcome, e.reason])).toEqual([
      ['revoke-pending', 'unknown', 'http_503'],
      ['revoke-sent', 'success', 'delivered'],
      ['revoke-suppressed', 'unknown', 'protected_agent'],
      ['revoke-dry-run', 'unknown', 'dry_run'],
      ['revoke-failed', 'failure', 'http_400'],
    ])
    expect(
      buildRevokeDocument(revokeOutcomes[1] as (typeof revokeOutcomes)[number], 'default', ingestedAt),
    ).toMatchObject({
      url: { original: 'https://hooks.example/revoke' },
      http: { response: { status_code: 200 } },
      nerve: { incident: { id: correlation.incident.id }, revoke: { status: 'sent', attempts: 2 } },
    })
  })
})
