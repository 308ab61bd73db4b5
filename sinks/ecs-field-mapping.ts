// How nerve's values become ECS fields (ECS 9.4.0, shared/reference/ecs): the pieces the three document
// builders share. Pure functions; the allowed values are checked by tests/unit/sinks/ecs-documents.test.ts.
import { isIP } from 'node:net'
import { attackTactics, attackTechniques } from '../runtime/mitre-attack.ts'
import type { Correlation, FalcoPriority, IdentityFields } from '../schemas/types.ts'

export const ecsVersion = '9.4.0'

/** An ECS document: nested objects, no undefined values, no empty objects or arrays. */
export type EcsDocument = { [field: string]: unknown }

/** Drops undefined and null values, empty objects and empty arrays, recursively; keeps key order. */
export function compact(value: EcsDocument): EcsDocument {
  const out: EcsDocument = {}
  for (const key in value) {
    const kept = compactValue(value[key])
    if (kept !== undefined) setOwn(out, key, kept)
  }
  return out
}

/**
 * `out[key] = value` that keeps a key named `__proto__` as a field: the watched agent names its own tags and
 * request parameters, and an assignment would set the object's prototype instead, the field gone from the
 * document.
 */
function setOwn(out: EcsDocument, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true })
  } else {
    out[key] = value
  }
}

function compactValue(v: unknown): unknown {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'object') return v
  if (Array.isArray(v)) {
    const items: unknown[] = []
    for (const item of v) {
      const kept = compactValue(item)
      if (kept !== undefined) items.push(kept)
    }
    return items.length > 0 ? items : undefined
  }
  const inner = compact(v as EcsDocument)
  for (const _ in inner) return inner
  return undefined
}

export const isoTime = (epochMs: number): string => new Date(epochMs).toISOString()

const isPlainObject = (v: unknown): v is EcsDocument =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** `over` laid on `base`, objects merged key by key; a value of `over` (arrays included) wins when defined. */
export function mergeDocuments(base: EcsDocument, over: EcsDocument): EcsDocument {
  const out: EcsDocument = { ...base }
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue
    const current = Object.hasOwn(out, key) ? out[key] : undefined
    setOwn(out, key, isPlainObject(current) && isPlainObject(value) ? mergeDocuments(current, value) : value)
  }
  return out
}

/** Unique, non-empty strings in first-seen order (for related.* arrays). */
export const uniqueStrings = (values: readonly (string | undefined)[]): string[] => [
  ...new Set(values.filter((v): v is string => typeof v === 'string' && v.length > 0)),
]

/** An IP literal, or undefined: CloudTrail's sourceIPAddress may be a service name (`iam.amazonaws.com`). */
export const ipLiteral = (value: string | undefined): string | undefined =>
  value !== undefined && isIP(value) !== 0 ? value : undefined

/** Falco's hostname is the host of syscall events; for plugin sources (k8s_audit, …) only the observer. */
export const isHostSource = (source: string): boolean => ['', 'syscall', 'syscalls'].includes(source)

/** Falco priority → event.severity, as Elastic's Falco integration maps it (emergency 7 … debug 0). */
export const falcoSeverity: Record<FalcoPriority, number> = {
  emergency: 7,
  alert: 6,
  critical: 5,
  error: 4,
  warning: 3,
  notice: 2,
  informational: 1,
  debug: 0,
}

const tacticNames: Record<string, string> = {
  mitre_initial_access: 'Initial Access',
  mitre_execution: 'Execution',
  mitre_persistence: 'Persistence',
  mitre_privilege_escalation: 'Privilege Escalation',
  mitre_defense_evasion: 'Defense Evasion',
  mitre_credential_access: 'Credential Access',
  mitre_discovery: 'Discovery',
  mitre_lateral_movement: 'Lateral Movement',
  mitre_collection: 'Collection',
  mitre_command_and_control: 'Command and Control',
  mitre_exfiltration: 'Exfiltration',
  mitre_impact: 'Impact',
}

/** Falco rule tags → threat.* (MITRE ATT&CK technique ids `T1555`, `T1059.004`; `mitre_*` tactic tags). */
export function threatFromTags(tags: readonly string[]): EcsDocument | undefined {
  const techniques = uniqueStrings(tags.filter((t) => /^T\d{4}$/.test(t)))
  const subtechniques = uniqueStrings(tags.filter((t) => /^T\d{4}\.\d{3}$/.test(t)))
  const tactics = uniqueStrings(tags.map((t) => tacticNames[t]))
  if (techniques.length + subtechniques.length + tactics.length === 0) return undefined
  return {
    framework: 'MITRE ATT&CK',
    tactic: { name: tactics },
    technique: {
      id: uniqueStrings([...techniques, ...subtechniques.map((s) => s.slice(0, 5))]),
      subtechnique: { id: subtechniques },
    },
  }
}

const tacticIds: Record<string, string> = Object.fromEntries(
  Object.entries(attackTactics).map(([id, name]) => [name, id]),
)

/**
 * A correlation's threat.*: the rule's ATT&CK tactics and techniques (ids and names, parallel arrays as
 * ECS keeps them), then those the Falco alert's tags add. Sub-techniques (T1555.006) go to
 * threat.technique.subtechnique.id and their parent to threat.technique.id.
 */
export function threatOfCorrelation(c: Correlation): EcsDocument | undefined {
  const tactics = new Map<string, string | undefined>()
  const techniques = new Map<string, string | undefined>()
  const subtechniques = new Map<string, string | undefined>()
  for (const t of c.rule.mitre?.tactics ?? []) tactics.set(t.id, t.name)
  for (const t of c.rule.mitre?.techniques ?? []) {
    const parent = t.id.slice(0, 5)
    if (t.id.length > 5) subtechniques.set(t.id, t.name)
    if (!techniques.has(parent)) techniques.set(parent, attackTechniques[parent])
  }
  for (const tag of c.edge.tags) {
    const name = tacticNames[tag]
    if (name !== undefined && ![...tactics.values()].includes(name))
      tactics.set(tacticIds[name] ?? name, name)
    if (/^T\d{4}(\.\d{3})?$/.test(tag)) {
      const parent = tag.slice(0, 5)
      if (tag.length > 5 && !subtechniques.has(tag)) subtechniques.set(tag, attackTechniques[tag])
      if (!techniques.has(parent)) techniques.set(parent, attackTechniques[parent])
    }
  }
  if (tactics.size + techniques.size === 0) return undefined
  const ids = (m: Map<string, string | undefined>) => [...m.keys()].filter((k) => /^TA?\d{4}/.test(k))
  const names = (m: Map<string, string | undefined>) => uniqueStrings([...m.values()])
  return {
    framework: 'MITRE ATT&CK',
    tactic: { id: ids(tactics), name: names(tactics) },
    technique: {
      id: ids(techniques),
      name: names(techniques),
      subtechnique: { id: ids(subtechniques), name: names(subtechniques) },
    },
  }
}

/**
 * The name in an AWS principal ARN: the user name for `…:user/path/name`, the role name for
 * `…:assumed-role/role/session` and `…:role/path/name`. None for `…:federated-user/name`: its caller chose
 * that name (sts:GetFederationToken's Name), and Elastic's integration names the IAM user who called.
 */
export function awsPrincipalName(arn: string | undefined): string | undefined {
  if (!arn?.startsWith('arn:')) return arn || undefined
  const resource = arn.split(':').slice(5).join(':')
  const parts = resource.split('/')
  if (parts[0] === 'assumed-role') return parts[1]
  if (parts[0] === 'federated-user') return undefined
  return parts.at(-1) || undefined
}

/**
 * user.name as Elastic's AWS integration fills it from a CloudTrail record: the session issuer's name (a
 * role's for an assumed role, the IAM user's for a federated user), else the caller's own user name.
 */
export const awsUserName = (callerArn: string | undefined, issuerArn: string | undefined) =>
  awsPrincipalName(issuerArn) ?? awsPrincipalName(callerArn)

/** The Kubernetes, container and cloud parts of an identity, as ECS orchestrator.*, container.*, cloud.*. */
export function identityFields(identity: IdentityFields): EcsDocument {
  const pod = identity.k8s_pod
  return {
    orchestrator:
      identity.k8s_namespace || pod || identity.cluster
        ? {
            type: 'kubernetes',
            namespace: identity.k8s_namespace,
            cluster: { name: identity.cluster },
            resource: pod ? { type: 'pod', name: pod, id: identity.k8s_pod_uid } : undefined,
          }
        : undefined,
    container: { id: identity.container_id, image: imageFields(identity.container_image) },
    cloud: identity.account_id ? { provider: 'aws', account: { id: identity.account_id } } : undefined,
  }
}

/** `registry/repo:tag` or `repo@sha256:…` → ECS container.image.name (no tag, no digest) and .tag. */
export function imageFields(image: string | undefined): EcsDocument | undefined {
  if (!image) return undefined
  const at = image.indexOf('@')
  const withoutDigest = at >= 0 ? image.slice(0, at) : image
  const colon = withoutDigest.lastIndexOf(':')
  if (colon > withoutDigest.lastIndexOf('/')) {
    return { name: withoutDigest.slice(0, colon), tag: [withoutDigest.slice(colon + 1)] }
  }
  return { name: withoutDigest }
}
