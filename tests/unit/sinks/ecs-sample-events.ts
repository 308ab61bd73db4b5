// Normalized events, a correlation and revoke outcomes shaped the way ingest, correlate and the revoke
// dispatcher produce them, built from the real records in tests/fixtures/elasticsearch (see its README).
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Correlation, NormalizedEvent, RevokeOutcome } from '../../../schemas/types.ts'

const fixtures = resolve(import.meta.dirname, '../../fixtures/elasticsearch')

/** One JSON object per line; integers over 2^53 kept as strings, as ingest keeps them. */
const readNdjson = (name: string): Record<string, unknown>[] =>
  readFileSync(resolve(fixtures, name), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line.replace(/:(\d{16,})([,}])/g, ':"$1"$2')))

type Alert = { time: string; rule: string; output: string; hostname: string; tags: string[] }
type FalcoAlert = Alert & { output_fields: Record<string, unknown> }
type Alerts = [FalcoAlert, FalcoAlert, FalcoAlert]
const [shellAlert, shadowAlert, auditAlert] = readNdjson('falco-alerts.ndjson') as unknown as Alerts
const [attachRecord, createKeyRecord, passwordRecord] = readNdjson('cloudtrail-records.ndjson')

export const shellInContainer: NormalizedEvent = {
  id: '5f1c0ab3e2d94c7f8a6b1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708',
  side: 'edge',
  time: Date.parse('2023-05-25T13:44:05.478Z'),
  time_ns: 445_995,
  time_original: shellAlert.time,
  received_at: Date.parse('2023-05-25T13:44:05.912Z'),
  via: 'falcosidekick',
  agent: { id: 'default/kubecon', resolved_by: 'workload' },
  identity: {
    k8s_namespace: 'default',
    k8s_pod: 'kubecon',
    container_id: 'ee97d9c4186f',
    container_image: 'docker.io/library/alpine',
    host: 'falco-xczjd',
  },
  edge: {
    rule: shellAlert.rule,
    priority: 'critical',
    source: 'syscall',
    hostname: shellAlert.hostname,
    tags: shellAlert.tags,
    output: shellAlert.output,
    output_fields: shellAlert.output_fields,
    internal: false,
    process: { name: 'sh', cmdline: 'sh -c clear; (bash || ash || sh)', parent: 'runc' },
    user: { name: 'root' },
  },
  raw: shellAlert,
}

export const shadowRead: NormalizedEvent = {
  id: '0e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa9988776655',
  side: 'edge',
  time: Date.parse('2025-05-07T12:50:34.502Z'),
  time_ns: 309_868,
  time_original: shadowAlert.time,
  received_at: Date.parse('2025-05-07T12:50:35.001Z'),
  via: 'falco_http_output',
  agent: { id: 'x86', resolved_by: 'host' },
  identity: { host: 'x86' },
  edge: {
    rule: shadowAlert.rule,
    priority: 'warning',
    source: 'syscall',
    hostname: shadowAlert.hostname,
    tags: shadowAlert.tags,
    output: shadowAlert.output,
    output_fields: shadowAlert.output_fields,
    internal: false,
    process: { name: 'cat', cmdline: 'cat /etc/shadow', exepath: '/usr/bin/cat', parent: 'sudo' },
    file: { path: '/etc/shadow' },
    user: { name: 'root', uid: 0 },
  },
  raw: shadowAlert,
}

/** A k8s_audit plugin alert: hostname is where Falco runs, not the workload's host. */
export const k8sAuditPatch: NormalizedEvent = {
  id: '7a1e3c5b9d0f2468ace13579bdf02468ace13579bdf02468ace13579bdf02468',
  side: 'edge',
  time: Date.parse('2025-02-10T09:15:40.698Z'),
  time_ns: 757_000,
  time_original: auditAlert.time,
  received_at: Date.parse('2025-02-10T09:15:41.020Z'),
  via: 'falcosidekick',
  agent: { id: 'csi-cinder-controller', resolved_by: 'unresolved' },
  identity: {},
  edge: {
    rule: auditAlert.rule,
    priority: 'warning',
    source: 'k8s_audit',
    hostname: auditAlert.hostname,
    tags: auditAlert.tags,
    output: auditAlert.output,
    output_fields: auditAlert.output_fields,
    internal: false,
  },
  raw: auditAlert,
}

export const attachRolePolicy: NormalizedEvent = {
  id: '39480357-0a1d-4531-a3f2-71be4c041c25',
  side: 'core',
  time: Date.parse('2024-08-01T13:37:41Z'),
  time_ns: 0,
  time_original: '2024-08-01T13:37:41Z',
  received_at: Date.parse('2024-08-01T13:42:55Z'),
  via: 'cloudtrail_log_file',
  agent: { id: 'arn:aws:iam::609418236337:user/christophe', resolved_by: 'principal' },
  identity: {
    principal_arn: 'arn:aws:iam::609418236337:user/christophe',
    access_key_id: 'AKIA0W5KI69TY8X86BGT',
    account_id: '609418236337',
  },
  core: {
    action: 'iam:AttachRolePolicy',
    event_source: 'iam.amazonaws.com',
    event_name: 'AttachRolePolicy',
    event_type: 'AwsApiCall',
    read_only: false,
    principal_arn: 'arn:aws:iam::609418236337:user/christophe',
    principal_type: 'IAMUser',
    access_key_id: 'AKIA0W5KI69TY8X86BGT',
    source_ip: '209.209.254.254',
    user_agent: 'stratus-red-team_e2808a95-acc5-4508-b083-d31d6f4315d9',
    region: 'sagov-west-2r',
    account_id: '609418236337',
    resources: [],
    by_nerve: false,
  },
  raw: attachRecord,
}

export const createAccessKey: NormalizedEvent = {
  id: 'c64c4ded-ef03-4e5c-81eb-153b118d72f2',
  side: 'core',
  time: Date.parse('2024-07-30T21:53:13Z'),
  time_ns: 0,
  time_original: '2024-07-30T21:53:13Z',
  received_at: Date.parse('2024-07-30T21:53:14Z'),
  via: 'eventbridge',
  agent: { id: 'arn:aws:iam::946986569305:user/christophe', resolved_by: 'principal' },
  identity: { principal_arn: 'arn:aws:iam::946986569305:user/christophe', account_id: '946986569305' },
  core: {
    action: 'iam:CreateAccessKey',
    event_source: 'iam.amazonaws.com',
    event_name: 'CreateAccessKey',
    event_type: 'AwsApiCall',
    read_only: false,
    principal_arn: 'arn:aws:iam::946986569305:user/christophe',
    principal_type: 'IAMUser',
    access_key_id: 'AKIA30BEZSJBVKOFKZW0',
    source_ip: '211.9.016.253',
    region: 'ap-central-2r',
    account_id: '946986569305',
    resources: [],
    by_nerve: false,
  },
  raw: createKeyRecord,
}

export const deniedPasswordData: NormalizedEvent = {
  id: '450230d4-b39e-4a18-a6a0-d07a6e2105cb',
  side: 'core',
  time: Date.parse('2024-07-30T21:31:21Z'),
  time_ns: 0,
  time_original: '2024-07-30T21:31:21Z',
  received_at: Date.parse('2024-07-30T21:36:02Z'),
  via: 'firehose',
  agent: { id: 'stratus-red-team-ec2-get-password-data-role', resolved_by: 'registry' },
  identity: {
    principal_arn:
      'arn:aws:sts::457448411975:assumed-role/stratus-red-team-ec2-get-password-data-role/aws-go-sdk-1722375070115152000',
    role_arn: 'arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role',
    session_name: 'aws-go-sdk-1722375070115152000',
    access_key_id: 'ASIANQQHHS551LWULIWD',
    account_id: '457448411975',
  },
  core: {
    action: 'ec2:GetPasswordData',
    event_source: 'ec2.amazonaws.com',
    event_name: 'GetPasswordData',
    event_type: 'AwsApiCall',
    read_only: true,
    error_code: 'Client.UnauthorizedOperation',
    error_message: 'You are not authorized to perform this operation.',
    principal_arn:
      'arn:aws:sts::457448411975:assumed-role/stratus-red-team-ec2-get-password-data-role/aws-go-sdk-1722375070115152000',
    principal_type: 'AssumedRole',
    session_issuer_arn: 'arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role',
    access_key_id: 'ASIANQQHHS551LWULIWD',
    source_ip: '200.249.253.51',
    region: 'apiso-northsouth-3r',
    account_id: '457448411975',
    resources: [],
    by_nerve: false,
  },
  raw: passwordRecord,
}

export const events = [shellInContainer, shadowRead, attachRolePolicy, createAccessKey, deniedPasswordData]

/** The shell in the container, then the role policy attached 90 s later by the same agent. */
export const correlation: Correlation = {
  id: 'a3b1c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90',
  time: shellInContainer.time + 90_000,
  rule: {
    id: 'shell-then-iam-write',
    severity: 80,
    revoke: true,
    version: '3f9a0c1d2e4b',
    mitre: {
      tactics: [{ id: 'TA0004', name: 'Privilege Escalation' }],
      techniques: [{ id: 'T1098.003', name: 'Additional Cloud Roles' }],
    },
  },
  agent: {
    id: 'data-cleaner',
    resolved_by: 'registry',
    identity: { ...shellInContainer.identity, account_id: '609418236337' },
  },
  edge: {
    event_id: shellInContainer.id,
    time: shellInContainer.time,
    rule: shellAlert.rule,
    priority: 'critical',
    output: shellAlert.output,
    hostname: shellAlert.hostname,
    source: 'syscall',
    tags: shellAlert.tags,
  },
  core: {
    event_id: attachRolePolicy.id,
    time: shellInContainer.time + 90_000,
    action: 'iam:AttachRolePolicy',
    principal: 'arn:aws:iam::609418236337:user/christophe',
    read_only: false,
    source_ip: '209.209.254.254',
    region: 'sagov-west-2r',
    account_id: '609418236337',
  },
  delta_ms: 90_000,
  window: { before: 120_000, after: 900_000, grace: 1_200_000 },
  score: 92,
  reasons: [
    { factor: 'rule_severity', points: 80, detail: 'rule severity 80' },
    { factor: 'edge_priority', points: 12, detail: 'Falco priority critical' },
  ],
  incident: {
    id: 'inc-data-cleaner-1685022245478',
    first_seen: shellInContainer.time,
    last_seen: shellInContainer.time + 90_000,
    correlation_count: 1,
    signals: ['Terminal shell in container', 'iam:AttachRolePolicy'],
  },
  lag_at_arrival: { edge: 0, core: 314_000 },
}

const outcome = (
  status: RevokeOutcome['status'],
  sequence: number,
  extra: Partial<RevokeOutcome> & { reason: string },
): RevokeOutcome => ({
  id: `rv-${correlation.incident.id}:${sequence}`,
  decision_id: `rv-${correlation.incident.id}`,
  time: correlation.time + 40 + sequence,
  correlation_id: correlation.id,
  incident_id: correlation.incident.id,
  agent_id: correlation.agent.id,
  status,
  attempts: 0,
  ...extra,
})

export const revokeOutcomes: RevokeOutcome[] = [
  outcome('pending', 0, {
    reason: 'http_503',
    target: 'https://hooks.example/revoke',
    attempts: 1,
    http_status: 503,
  }),
  outcome('sent', 1, {
    reason: 'delivered',
    target: 'https://hooks.example/revoke',
    attempts: 2,
    http_status: 200,
  }),
  outcome('suppressed', 2, { reason: 'protected_agent', detail: 'agent data-cleaner is protected' }),
  outcome('dry_run', 3, { reason: 'dry_run' }),
  outcome('failed', 4, {
    reason: 'http_400',
    target: 'https://hooks.example/revoke',
    attempts: 1,
    http_status: 400,
  }),
]
