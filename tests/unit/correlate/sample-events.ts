// Normalized events shaped exactly as ingest produces them from the real samples in ../shared/samples:
// the Falco "Terminal shell in container" alert (falcosecurity/falco-website @ c47da4cb, CC-BY-4.0,
// falcosidekick-response-engine-part-1-kubeless.md:309) and Stratus Red Team CloudTrail records
// (DataDog/stratus-red-team @ 7c9a7a5a63dc, Apache-2.0, docs/detonation-logs: AttachRolePolicy eventID
// 39480357-…, GetSecretValue b9c3d881-…). Times, ids and agent keys are parameters so tests can place them.
import type { BaselineConfig } from '../../../correlate/agent-baseline.ts'
import type { CorrelatorConfig } from '../../../correlate/correlator-types.ts'
import { revokeRequest } from '../../../ingest/revoke-request.ts'
import type {
  CoreFields,
  EdgeFields,
  FalcoPriority,
  NormalizedEvent,
  RuleConfig,
} from '../../../schemas/types.ts'

const shellOutput =
  '23:39:44.834631763: Notice A shell was spawned in a container with an attached terminal (user=root user_loginuid=-1 k8s.ns=default k8s.pod=alpine container=5892b41bcf46 shell=sh parent=<NA> cmdline=sh terminal=34817 container_id=5892b41bcf46 image=<NA>) k8s.ns=default k8s.pod=alpine container=5892b41bcf46'

export type EdgeOptions = {
  id?: string
  time: number
  agent?: string
  rule?: string
  priority?: FalcoPriority
  tags?: string[]
  source?: string
  internal?: boolean
  output?: string
}

/**
 * One agent's burst of `count` terminal shells a second apart from `start`, keyed as ingest keys them (the
 * agent): all on the agent's one partition. Records as `bus.publish` takes them.
 */
export function shellBurst(idPrefix: string, count: number, start: number) {
  return Array.from({ length: count }, (_, i) => {
    const value = edgeEvent({ id: `${idPrefix}-${i}`, agent: 'data-cleaner', time: start + i * 1_000 })
    return { key: value.agent.id, value }
  })
}

export function edgeEvent(o: EdgeOptions): NormalizedEvent {
  const edge: EdgeFields = {
    rule: o.rule ?? 'Terminal shell in container',
    priority: o.priority ?? 'notice',
    source: o.source ?? 'syscall',
    hostname: 'ip-10-0-1-23.ec2.internal',
    tags: o.tags ?? ['maturity_stable', 'container', 'shell', 'mitre_execution', 'T1059'],
    output: o.output ?? shellOutput,
    output_fields: {
      'container.id': '5892b41bcf46',
      'k8s.ns.name': 'default',
      'k8s.pod.name': 'alpine',
      'proc.cmdline': 'sh',
      'proc.name': 'sh',
      'user.name': 'root',
    },
    internal: o.internal ?? false,
    process: { name: 'sh', cmdline: 'sh' },
    user: { name: 'root' },
  }
  const iso = new Date(o.time).toISOString()
  return {
    id: o.id ?? `edge-${o.time}`,
    side: 'edge',
    time: o.time,
    time_ns: 0,
    time_original: iso.replace('Z', '000000Z'),
    received_at: o.time + 500,
    via: 'falcosidekick',
    agent: { id: o.agent ?? 'data-cleaner', resolved_by: 'registry' },
    identity: { k8s_namespace: 'default', k8s_pod: 'alpine', container_id: '5892b41bcf46' },
    edge,
    raw: { rule: edge.rule, priority: 'Notice', output: edge.output, time: iso },
  }
}

export type CoreOptions = {
  id?: string
  time: number
  agent?: string
  action?: string
  readOnly?: boolean
  errorCode?: string
  principal?: string
  sessionIssuer?: string
  accessKeyId?: string
  byNerve?: boolean
  requestParameters?: Record<string, unknown>
  /** The resource the request named (core.target). */
  target?: string
}

export function coreEvent(o: CoreOptions): NormalizedEvent {
  const action = o.action ?? 'iam:AttachRolePolicy'
  const [service, eventName] = action.split(':') as [string, string]
  const core: CoreFields = {
    action,
    event_source: `${service}.amazonaws.com`,
    event_name: eventName,
    event_type: 'AwsApiCall',
    read_only: o.readOnly ?? false,
    principal_arn: o.principal ?? 'arn:aws:iam::609418236337:user/christophe',
    principal_type: o.sessionIssuer ? 'AssumedRole' : 'IAMUser',
    access_key_id: o.accessKeyId ?? 'AKIA0W5KI69TY8X86BGT',
    source_ip: '209.209.254.254',
    user_agent: 'stratus-red-team_e2808a95-acc5-4508-b083-d31d6f4315d9',
    region: 'sagov-west-2r',
    account_id: '609418236337',
    resources: [],
    by_nerve: o.byNerve ?? false,
  }
  if (o.sessionIssuer) core.session_issuer_arn = o.sessionIssuer
  if (o.errorCode) core.error_code = o.errorCode
  if (o.target) core.target = o.target
  const requestParameters = o.requestParameters ?? {
    policyArn: 'arn:aws:iam::aws:policy/AdministratorAccess',
    roleName: 'stratus-red-team-malicious-iam-role',
  }
  const revokes = revokeRequest(action, requestParameters, o.time, core.error_code)
  if (revokes) core.revokes = revokes
  const iso = new Date(o.time).toISOString().replace('.000Z', 'Z')
  return {
    id: o.id ?? `39480357-0a1d-4531-a3f2-${String(o.time).padStart(12, '0')}`,
    side: 'core',
    time: o.time,
    time_ns: 0,
    time_original: iso,
    received_at: o.time + 300_000,
    via: 'cloudtrail_log_file',
    agent: { id: o.agent ?? 'data-cleaner', resolved_by: 'registry' },
    identity: {
      principal_arn: core.principal_arn,
      access_key_id: core.access_key_id,
      account_id: '609418236337',
    },
    core,
    raw: {
      eventID: o.id,
      eventName: eventName,
      eventSource: core.event_source,
      eventTime: iso,
      requestParameters,
    },
  }
}

/** A behavioural baseline at the checkpoint tests' time scale (seconds), big enough never to shed. */
export const storeTestBaseline: BaselineConfig = {
  enabled: true,
  history: 3_600_000,
  warmup: 1_000,
  routine_min: 3,
  burst_window: 60_000,
  burst_min: 3,
  memory_bytes: 1 << 20,
}

/**
 * The correlator of the checkpoint stores' tests: one rule pairing any alert with any IAM call, a 10 s
 * window, and the baseline on, so that its per-agent records go through the store too.
 */
export const storeTestConfig: CorrelatorConfig = {
  rules: [{ id: 'any', edge: {}, core: { actions: ['iam:*'] }, severity: 50, revoke: false }],
  window: { before: 1_000, after: 10_000, grace: 5_000 },
  max_events_per_agent: 100,
  memory_budget_bytes: 1 << 26,
  incident_gap: 60_000,
  self_identities: [],
  baseline: storeTestBaseline,
}

/** The correlator tests' revoking rule: any runtime alert, then any IAM call. */
export const anyThenIam: RuleConfig = {
  id: 'any-then-iam',
  edge: {},
  core: { actions: ['iam:*'] },
  severity: 80,
  revoke: true,
}
