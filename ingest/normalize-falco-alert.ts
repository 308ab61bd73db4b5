// A validated Falco alert → one normalized event. Pure. The edge id is a content hash of hostname,
// source, rule, time (canonical 9 digits) and output_fields: the same alert hashes the same whether it came
// straight from Falco or through Falcosidekick (which adds a random uuid and trims the time). Alerts of the
// cloudtrail plugin (`source: aws_cloudtrail`) are CloudTrail calls seen through the edge door: they become
// core events whose id is `ct.id` (the CloudTrail eventID), so the same call is never counted twice.

import type { FalcoAlert } from '../schemas/input-validators.ts'
import type { CoreFields, EdgeFields, FalcoPriority, IdentityFields } from '../schemas/types.ts'
import { contentHash } from './content-hash.ts'
import type { NormalizeContext, NormalizeResult } from './normalized-draft.ts'
import { parseEventTime } from './parse-event-time.ts'

type Fields = Record<string, unknown>

/** The source of nerve's own edge events (summaries of folded alerts): no input may use it. */
const nerveSource = 'nerve'
const nerveRefused =
  "is nerve: that source is nerve's own (summaries of alerts folded over the edge budget), never a Falco alert's"

export function normalizeFalcoAlert(alert: FalcoAlert, ctx: NormalizeContext): NormalizeResult {
  const time = parseEventTime(alert.time)
  if (!time) return { ok: false, problems: [{ path: '/time', message: 'is not a real calendar time' }] }
  const source = canonicalSource(alert.source)
  // Summaries of folded alerts (agent-budget.ts) are nerve's own: one posted here would raise the flood
  // signal as any pod its fields name.
  if (source === nerveSource) return { ok: false, problems: [{ path: '/source', message: nerveRefused }] }
  const hostname = alert.hostname ?? ''
  const fields: Fields = alert.output_fields ?? {}
  const hash = contentHash([hostname, source, alert.rule, time.canonical, fields])
  // Objects are written out key by key, in the order the published bytes have: object spreads of these
  // shapes cost more than the rest of the normalization together.
  if (source === 'aws_cloudtrail') {
    return {
      ok: true,
      event: {
        time: time.ms,
        time_ns: time.ns,
        time_original: alert.time,
        received_at: ctx.receivedAt,
        via: ctx.via,
        raw: alert,
        id: text(fields['ct.id']) ?? `falco-ct-${hash}`,
        side: 'core',
        identity: cloudTrailIdentity(fields),
        core: cloudTrailCore(fields, ctx),
      },
    }
  }
  const edge: EdgeFields = {
    rule: alert.rule,
    priority: canonicalPriority(alert.priority),
    source,
    hostname,
    tags: alert.tags ?? [],
    output: alert.output ?? '',
    output_fields: fields,
    internal: isInternal(source, alert.rule),
  }
  addDetails(edge, fields)
  return {
    ok: true,
    event: {
      time: time.ms,
      time_ns: time.ns,
      time_original: alert.time,
      received_at: ctx.receivedAt,
      via: ctx.via,
      raw: alert,
      id: hash,
      side: 'edge',
      identity: edgeIdentity(fields, edge),
      edge,
    },
  }
}

/** Falco's own messages (metrics snapshots, drops) and Falcosidekick's test event are not anomalies. */
function isInternal(source: string, rule: string): boolean {
  return source === 'internal' || rule.startsWith('Falco internal:') || rule === 'Test rule'
}

/** Missing on old Falco; `syscalls` is Falcosidekick's default for an empty source. */
function canonicalSource(source: string | undefined): string {
  if (!source || source === 'syscalls') return 'syscall'
  return source
}

function canonicalPriority(priority: string): FalcoPriority {
  const lower = priority.toLowerCase()
  return (lower === 'info' ? 'informational' : lower) as FalcoPriority
}

const serviceAccountUser = /^system:serviceaccount:([^:]+):([^:]+)$/

function edgeIdentity(fields: Fields, edge: EdgeFields): IdentityFields {
  // Assigned one by one, in the published key order (as in normalize-cloudtrail-record.ts): a generic
  // setter over these shapes cost more than the assignments themselves.
  const identity: IdentityFields = {}
  const namespace = text(fields['k8s.ns.name']) ?? text(fields['k8smeta.ns.name'])
  if (namespace !== undefined) identity.k8s_namespace = namespace
  const pod = text(fields['k8s.pod.name']) ?? text(fields['k8smeta.pod.name'])
  if (pod !== undefined) identity.k8s_pod = pod
  const podUid = text(fields['k8s.pod.uid']) ?? text(fields['k8smeta.pod.uid'])
  if (podUid !== undefined) identity.k8s_pod_uid = podUid
  // Falcosidekick's customfields land in output_fields: the usual way to say which cluster a node is in.
  const cluster = text(fields.cluster) ?? text(fields['k8s.cluster.name'])
  if (cluster !== undefined) identity.cluster = cluster
  const containerId = text(fields['container.id'])
  if (containerId !== undefined && containerId !== 'host') identity.container_id = containerId
  const containerImage = image(fields)
  if (containerImage !== undefined) identity.container_image = containerImage
  const user = text(fields['ka.user.name'])
  const actor = user === undefined ? null : serviceAccountUser.exec(user)
  if (actor) {
    identity.k8s_namespace = actor[1]
    identity.k8s_service_account = actor[2]
  }
  // For plugin sources (k8s_audit, gcp_auditlog, …) hostname is where Falco runs, not the workload's host.
  if ((edge.source === 'syscall' || edge.internal) && edge.hostname) identity.host = edge.hostname
  return identity
}

function image(fields: Fields): string | undefined {
  const repository = text(fields['container.image.repository'])
  if (!repository) return text(fields['container.image'])
  const tag = text(fields['container.image.tag'])
  return tag ? `${repository}:${tag}` : repository
}

/**
 * process, network, file and user picked from output_fields, each only when Falco printed some of it.
 * Each object is built only from its defined values, key by key in the published order: a literal of
 * every key and then a copy of its defined ones cost two objects and a keyed walk per detail.
 */
function addDetails(edge: EdgeFields, fields: Fields): void {
  const name = text(fields['proc.name'])
  const cmdline = text(fields['proc.cmdline'])
  const exepath = text(fields['proc.exepath'])
  const parent = text(fields['proc.pname'])
  const pid = integer(fields['proc.pid'])
  if (
    name !== undefined ||
    cmdline !== undefined ||
    exepath !== undefined ||
    parent !== undefined ||
    pid !== undefined
  ) {
    const process: NonNullable<EdgeFields['process']> = {}
    if (name !== undefined) process.name = name
    if (cmdline !== undefined) process.cmdline = cmdline
    if (exepath !== undefined) process.exepath = exepath
    if (parent !== undefined) process.parent = parent
    if (pid !== undefined) process.pid = pid
    edge.process = process
  }
  const remoteIp = text(fields['fd.rip']) ?? text(fields['fd.sip'])
  const remotePort = integer(fields['fd.rport']) ?? integer(fields['fd.sport'])
  const localIp = text(fields['fd.lip']) ?? text(fields['fd.cip'])
  const localPort = integer(fields['fd.lport']) ?? integer(fields['fd.cport'])
  const proto = text(fields['fd.l4proto'])
  if (
    remoteIp !== undefined ||
    remotePort !== undefined ||
    localIp !== undefined ||
    localPort !== undefined ||
    proto !== undefined
  ) {
    const network: NonNullable<EdgeFields['network']> = {}
    if (remoteIp !== undefined) network.remote_ip = remoteIp
    if (remotePort !== undefined) network.remote_port = remotePort
    if (localIp !== undefined) network.local_ip = localIp
    if (localPort !== undefined) network.local_port = localPort
    if (proto !== undefined) network.proto = proto
    edge.network = network
  }
  const fdName = text(fields['fd.name'])
  if (fdName?.startsWith('/') && !fdName.includes('->')) edge.file = { path: fdName }
  const userName = text(fields['user.name'])
  const uid = integer(fields['user.uid'])
  if (userName !== undefined || uid !== undefined) {
    const user: NonNullable<EdgeFields['user']> = {}
    if (userName !== undefined) user.name = userName
    if (uid !== undefined) user.uid = uid
    edge.user = user
  }
}

function cloudTrailCore(fields: Fields, ctx: NormalizeContext): CoreFields {
  const shortSource = text(fields['ct.shortsrc'])
  const eventSource = text(fields['ct.src']) ?? (shortSource ? `${shortSource}.amazonaws.com` : 'unknown')
  const eventName = text(fields['ct.name']) ?? 'unknown'
  const principal = text(fields['ct.user.arn'])
  const readOnly = text(fields['ct.readonly'])
  const core: CoreFields = {
    action: `${eventSource.replace(/\.amazonaws\.com$/, '')}:${eventName}`,
    event_source: eventSource,
    event_name: eventName,
    event_type: text(fields['ct.type']) ?? 'unknown',
    resources: [],
    by_nerve: principal !== undefined && ctx.isSelfIdentity(principal),
  }
  set(core, 'read_only', readOnly === undefined ? undefined : readOnly === 'true')
  set(core, 'error_code', text(fields['ct.error']))
  set(core, 'principal_arn', principal)
  set(core, 'principal_id', text(fields['ct.user.principalid']))
  const session = assumedRole.exec(principal ?? '')
  if (session) set(core, 'session_issuer_arn', `arn:${session[1]}:iam::${session[2]}:role/${session[3]}`)
  set(core, 'principal_type', text(fields['ct.user.identitytype']))
  set(core, 'source_ip', text(fields['ct.srcip']))
  set(core, 'user_agent', text(fields['ct.useragent']))
  set(core, 'region', text(fields['ct.region']))
  set(core, 'account_id', text(fields['ct.user.accountid']))
  return core
}

function cloudTrailIdentity(fields: Fields): IdentityFields {
  const identity: IdentityFields = {}
  const arn = text(fields['ct.user.arn'])
  set(identity, 'principal_arn', arn)
  set(identity, 'account_id', text(fields['ct.user.accountid']))
  // The plugin gives the session ARN only: its role is what the registry names (as for the same record
  // read from CloudTrail, where the session issuer carries it).
  const session = assumedRole.exec(arn ?? '')
  if (session) {
    set(identity, 'role_arn', `arn:${session[1]}:iam::${session[2]}:role/${session[3]}`)
    set(identity, 'session_name', session[4])
  }
  return identity
}

const assumedRole = /^arn:([^:]+):sts::([^:]*):assumed-role\/([^/]+)\/(.+)$/

/** A usable text value: Falco writes `<NA>` or null when it does not know. */
function text(value: unknown): string | undefined {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (typeof value !== 'string' || value === '' || value === '<NA>') return undefined
  return value
}

function integer(value: unknown): number | undefined {
  const n = typeof value === 'string' && /^-?\d{1,15}$/.test(value) ? Number(value) : value
  return typeof n === 'number' && Number.isSafeInteger(n) ? n : undefined
}

function set<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value
}
