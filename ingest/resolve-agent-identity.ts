// Who is the agent (DESIGN.md "Identity"). Pure given its state (the registry and the learned links):
// the same events in the same order resolve the same way; no clock is read, credential lifetimes are
// compared with event time.
//
// 1. The registry (config `agents`) names an agent from any identifier the event carries, most specific
//    kind first: access key, Kubernetes workload, AWS principal, image, then host.
// 2. Stitching: an IRSA AssumeRoleWithWebIdentity (from an EKS cluster's issuer: eks-oidc-issuer.ts) or a
//    Pod Identity sts:AssumeRole (by pods.eks.amazonaws.com) issues an accessKeyId to a Kubernetes identity;
//    later calls signed with that key inherit it for the credential lifetime (event time within
//    [issued − skew, expires + skew]). An sts:AssumeRole signed with such a key (role chaining) issues a key
//    that belongs to the same workload, hop after hop. A call signed with a linked key is its holder's,
//    whatever role it runs as: the registry then names the holder (by its workload, or the role it was
//    issued), never the role the call chained into, which another agent may share. One workload (per
//    OIDC issuer: two clusters' copies of a chart are two workloads) holds at most
//    maxChainedLinksPerWorkload chained and maxIssuedLinksPerWorkload issuing links; past them, and past
//    the table's size, the links that go are the largest holder's (credential-links.ts).
// 3. Fallback ids: the workload (`namespace/workload`, the pod name without its ReplicaSet/DaemonSet
//    suffix; an IRSA identity names the service account), else the principal (role ARN), else
//    `host:<name>`, else `unresolved:<event id>`: an event naming no one is its own agent, so it can never
//    be joined to another (a shared `unresolved` key would pair unrelated events). The watched agent
//    chooses that text (its pods, its role sessions), so a fallback id equal to a registry id (an entry
//    named `payments/worker` whose match misses that workload) becomes `unregistered:<id>`: it would share
//    the entry's windows, and a stitched one would pass for the entry in the revoke policy. Registry ids
//    may not begin with the marker. Only colliding ids change: every other id stays what it was.
import { NerveError } from '../runtime/errors.ts'
import type {
  AgentConfig,
  AgentRef,
  IdentityFields,
  IdentityLink,
  NormalizedEvent,
  ResolvedBy,
} from '../schemas/types.ts'
import { createCredentialLinks } from './credential-links.ts'
import { compileFirstMatch } from './match-glob.ts'
import { compileK8sMatch } from './match-k8s-entries.ts'
import type { UnresolvedEvent } from './normalized-draft.ts'

export type AgentSummary = {
  id: string
  resolved_by: ResolvedBy
  /** Distinct identifiers seen per kind (at most 16 each). */
  identifiers: Partial<Record<keyof IdentityFields, string[]>>
  events: { edge: number; core: number }
  /** Event times, epoch ms. */
  first_seen: number
  last_seen: number
}

export type AgentResolver = {
  /** Learns the credential link an issuing event carries; returns it when new or changed. */
  learn(event: UnresolvedEvent): IdentityLink | undefined
  /**
   * Adds links learned elsewhere (the links file at start, another ingest instance); returns those that
   * were new or changed (not a link already held as it is: this instance's own, shared back to it).
   */
  addLinks(links: readonly IdentityLink[]): IdentityLink[]
  /** Completes `event` into the NormalizedEvent it returns (the same object: the draft is not reused). */
  resolve(event: UnresolvedEvent): NormalizedEvent
  links(): IdentityLink[]
  agents(): AgentSummary[]
}

export type ResolverOptions = {
  maxLinks?: number
  /** Chained links one workload may hold; past it, its oldest chained links are forgotten. */
  maxChainedLinksPerWorkload?: number
  /** Issuing links (IRSA, Pod Identity) one workload may hold; past it, its oldest are forgotten. */
  maxIssuedLinksPerWorkload?: number
  /** Called with the number of links of `workload` forgotten to stay within maxLinks or its caps. */
  onLinksEvicted?(count: number, workload: string): void
  /** Unregistered agents agents() keeps (registry agents are always kept). */
  maxAgents?: number
  skewMs?: number
  /** When given (non-empty), the cluster is part of the workload id; alerts get theirs from these hosts. */
  clusters?: readonly { name: string; hosts: readonly string[] }[]
  /** false: agents() stays empty (replay never reads it; keeping it cost 2 µs per event resolved). */
  summaries?: boolean
}

const linkFields = [
  'k8s_namespace',
  'k8s_service_account',
  'k8s_pod',
  'k8s_pod_uid',
  'cluster',
  'role_arn',
] as const
const maxIdentifiersPerKind = 16
/**
 * Per-agent summaries are bounded in bytes too: an identifier longer than this is not kept (the watched
 * agent chooses pod names, session names, images), and a summary keeps at most summaryTextLimit
 * characters of identifiers in all, so 10,000 summaries stay within a few tens of MiB.
 */
const maxIdentifierLength = 256
const summaryTextLimit = 4096
const summaryText = new WeakMap<AgentSummary, number>()

export function createAgentResolver(
  agents: readonly AgentConfig[],
  options: ResolverOptions = {},
): AgentResolver {
  const {
    maxLinks = 200_000,
    maxChainedLinksPerWorkload = 1_000,
    maxIssuedLinksPerWorkload = 10_000,
    onLinksEvicted,
    maxAgents = 10_000,
    skewMs = 300_000,
    clusters = [],
    summaries = true,
  } = options
  const registry = compileRegistry(agents)
  const registryIds = new Set(agents.map((a) => a.id))
  /** A fallback id, made unable to equal a registry id. */
  const unregistered = (id: string) => (registryIds.has(id) ? `${unregisteredMarker}${id}` : id)
  const clusterOfHost = compileFirstMatch(clusters.map((c) => c.hosts))
  const clustered = clusters.length > 0
  const workloadId = (identity: IdentityFields) => workloadKey(identity, clustered)
  const links = createCredentialLinks({
    maxLinks,
    maxChainedPerWorkload: maxChainedLinksPerWorkload,
    maxIssuedPerWorkload: maxIssuedLinksPerWorkload,
    holderOf: holderKey,
    onEvicted: onLinksEvicted,
  })
  const seen = new Map<string, Tallied>()
  const tally = createTally(seen, maxAgents, registryIds)

  const linkFor = (keyId: string | undefined, time: number): IdentityLink | undefined => {
    const link = keyId === undefined ? undefined : links.get(keyId)
    if (!link || time < link.issued_at - skewMs || time > link.expires + skewMs) return undefined
    return link
  }

  /** `namespace/pod` → the service account a Pod Identity credential named for it (bounded like links). */
  const podAccounts = new Map<string, string>()

  const store = (link: IdentityLink) => {
    links.set(link)
    if (link.k8s_namespace && link.k8s_pod && link.k8s_service_account) {
      const pod = `${link.k8s_namespace}/${link.k8s_pod}`
      podAccounts.delete(pod)
      podAccounts.set(pod, link.k8s_service_account)
      if (podAccounts.size > maxLinks) podAccounts.delete(podAccounts.keys().next().value as string)
    }
  }

  /** An alert without a cluster field takes the cluster its Falco host is listed under. */
  const withCluster = (identity: IdentityFields, event: UnresolvedEvent): IdentityFields => {
    if (!clustered || identity.cluster !== undefined || !identity.k8s_namespace) return identity
    const index = clusterOfHost(event.edge?.hostname)
    if (index === Number.POSITIVE_INFINITY) return identity
    return { ...identity, cluster: (clusters[index] as { name: string }).name }
  }

  /** A Falco alert names its pod, never its service account: add the one Pod Identity named for that pod. */
  const withPodAccount = (identity: IdentityFields): IdentityFields => {
    if (!identity.k8s_namespace || !identity.k8s_pod || identity.k8s_service_account) return identity
    const account = podAccounts.get(`${identity.k8s_namespace}/${identity.k8s_pod}`)
    return account === undefined ? identity : { ...identity, k8s_service_account: account }
  }

  const learn = (event: UnresolvedEvent): IdentityLink | undefined => {
    const credentials = event.core?.credentials
    if (!credentials) return undefined
    // Role chaining: credentials issued to a call signed with a stitched key belong to that key's
    // workload, however many hops down (each issued key gets its own link).
    const id: Partial<IdentityLink> | undefined =
      event.identity.k8s_service_account || event.identity.k8s_pod ? event.identity : chainedFrom(event)
    if (!id) return undefined
    const link: IdentityLink = {
      access_key_id: credentials.access_key_id,
      issued_at: event.time,
      expires: credentials.expires,
    }
    for (const field of linkFields) if (id[field] !== undefined) link[field] = id[field]
    const issuer = id === event.identity ? event.oidc_issuer : id.oidc_issuer
    if (issuer !== undefined) link.oidc_issuer = issuer
    if (id.chained_from !== undefined) link.chained_from = id.chained_from
    const known = links.get(link.access_key_id)
    if (known && JSON.stringify(known) === JSON.stringify(link)) return undefined
    store(link)
    return link
  }

  /** The link of the key that signed an sts:AssumeRole, without its role (the new session has its own). */
  const chainedFrom = (event: UnresolvedEvent): Partial<IdentityLink> | undefined => {
    if (
      event.core?.action !== 'sts:AssumeRole' ||
      event.identity.access_key_id === event.core.credentials?.access_key_id
    )
      return undefined
    const parent = linkFor(event.identity.access_key_id, event.time)
    if (!parent) return undefined
    const { role_arn: _role, ...workload } = parent
    return { ...workload, chained_from: parent.access_key_id }
  }

  /** The registry's agent for a link's holder: its workload, or the role it was issued (never the call's). */
  const holderAgents = new WeakMap<IdentityLink, string | null>()
  const holderAgent = (link: IdentityLink): string | undefined => {
    let id = holderAgents.get(link)
    if (id === undefined) {
      const holder: IdentityFields = {}
      for (const field of linkFields) if (link[field] !== undefined) holder[field] = link[field]
      id = registry(holder)?.id ?? null
      holderAgents.set(link, id)
    }
    return id ?? undefined
  }

  const resolve = (event: UnresolvedEvent): NormalizedEvent => {
    // Only learn() reads it: the published event does not carry it.
    if (event.oidc_issuer !== undefined) delete event.oidc_issuer
    if (event.side === 'edge') event.identity = withCluster(withPodAccount(event.identity), event)
    // The link (who holds the key) before the registry: the role a linked call runs as may be one the
    // registry lists for another agent, and the holder chained into it.
    const link = linkFor(event.identity.access_key_id, event.time)
    const own = link ? undefined : registry(event.identity)
    const identity = link ? withLink(event.identity, link) : event.identity
    const agent = link
      ? {
          id: holderAgent(link) ?? unregistered(workloadId(identity) ?? principalId(event)),
          resolved_by: 'stitched',
        }
      : own
        ? { id: own.id, resolved_by: own.kind === 'hosts' ? 'host' : 'registry' }
        : fallback(event.id, identity, workloadId, unregistered)
    // Completed in place (a spread copy of the event costs more than resolving it): `identity` keeps its
    // position among the keys, `agent` comes last, as in the published bytes.
    const resolved = event as NormalizedEvent
    resolved.identity = identity
    resolved.agent = agent as AgentRef
    if (summaries && resolved.agent.resolved_by !== 'unresolved') tally(resolved)
    return resolved
  }

  return {
    learn,
    addLinks: (more) => {
      const added: IdentityLink[] = []
      for (const link of more) {
        const known = links.get(link.access_key_id)
        if (!known || JSON.stringify(known) !== JSON.stringify(link)) added.push(link)
        store(link)
      }
      return added
    },
    resolve,
    links: () => [...links.values()],
    agents: () =>
      [...seen.values()].map((t) => t.summary).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
  }
}

function withLink(identity: IdentityFields, link: IdentityLink): IdentityFields {
  const merged: IdentityFields = { ...identity }
  for (const field of linkFields)
    if (merged[field] === undefined && link[field] !== undefined) merged[field] = link[field]
  return merged
}

function fallback(
  eventId: string,
  identity: IdentityFields,
  workloadId: (identity: IdentityFields) => string | undefined,
  unregistered: (id: string) => string,
): AgentRef {
  const workload = workloadId(identity)
  if (workload) return { id: unregistered(workload), resolved_by: 'workload' }
  const principal = identity.role_arn ?? identity.principal_arn
  if (principal) return { id: unregistered(principal), resolved_by: 'principal' }
  if (identity.host) return { id: unregistered(`host:${identity.host}`), resolved_by: 'host' }
  return { id: unregistered(`unresolved:${eventId}`), resolved_by: 'unresolved' }
}

const principalId = (event: UnresolvedEvent): string =>
  event.identity.role_arn ?? event.identity.principal_arn ?? `unresolved:${event.id}`

/**
 * `namespace/workload`: the pod name without the suffixes Kubernetes generates, or the service account;
 * `cluster/namespace/workload` when clusters are configured and the event's cluster is known.
 */
function workloadKey(identity: IdentityFields, clustered: boolean): string | undefined {
  const ns = identity.k8s_namespace
  if (!ns) return undefined
  const prefix = clustered && identity.cluster ? `${identity.cluster}/` : ''
  if (identity.k8s_pod) return `${prefix}${ns}/${workloadName(identity.k8s_pod)}`
  if (identity.k8s_service_account) return `${prefix}${ns}/${identity.k8s_service_account}`
  return undefined
}

// Kubernetes' generated suffixes use this alphabet (no vowels, no 0, 1, 3): ReplicaSet pod-template-hash
// plus a 5-character pod suffix (Deployments), a 5-character suffix (DaemonSets, Jobs), an ordinal (StatefulSets).
const k8sChars = '[bcdfghjklmnpqrstvwxz2456789]'
const generatedSuffix = new RegExp(`^(.+?)(?:-${k8sChars}{6,10}-${k8sChars}{5}|-${k8sChars}{5}|-\\d{1,4})$`)

export function workloadName(pod: string): string {
  return generatedSuffix.exec(pod)?.[1] ?? pod
}

/**
 * Registry entries no Falco alert can ever match, so they never correlate: start-up warns about them.
 * Alerts carry a pod, an image, a host; never an AWS identity, and a service account only once a Pod
 * Identity credential named the pod behind it (IRSA never does).
 */
export function registryWarnings(agents: readonly AgentConfig[]): string[] {
  const warnings: string[] = []
  agents.forEach((agent, index) => {
    const where = `agents[${index}] (${agent.id})`
    const m = agent.match
    const k8s = m.k8s ?? []
    const edgeCapable =
      (m.images?.length ?? 0) > 0 ||
      (m.hosts?.length ?? 0) > 0 ||
      k8s.some((e) => e.pod !== undefined || (e.namespace !== undefined && e.service_account === undefined))
    if (edgeCapable) return
    if (k8s.some((e) => e.service_account !== undefined)) {
      warnings.push(
        `${where}: matches Falco alerts only after a Pod Identity credential names the pod behind its service account (IRSA never does); add a pod glob, an image or a host`,
      )
    } else {
      warnings.push(
        `${where}: names only AWS identities, which no Falco alert carries: its calls are named but never correlated; add a k8s pod, an image or a host`,
      )
    }
  })
  return warnings
}

/** What a fallback id equal to a registry id begins with instead (see the header). */
const unregisteredMarker = 'unregistered:'

type RegistryMatch = { id: string; kind: 'access_keys' | 'k8s' | 'aws' | 'images' | 'hosts' }

/**
 * The registry as one look-up per kind, most specific kind first; within a kind the first agent listed wins.
 * Throws CONFIG_INVALID for an id that begins with unregisteredMarker, naming the entry.
 */
function compileRegistry(
  agents: readonly AgentConfig[],
): (identity: IdentityFields) => RegistryMatch | undefined {
  agents.forEach((agent, index) => {
    if (!agent.id.startsWith(unregisteredMarker)) return
    throw new NerveError(
      'CONFIG_INVALID',
      `agents[${index}] (${agent.id}): an agent id may not begin with "${unregisteredMarker}", which marks a workload or principal the registry does not name; rename it.`,
    )
  })
  const first = (patterns: (agent: AgentConfig) => readonly string[] | undefined) =>
    compileFirstMatch(agents.map(patterns))
  const accessKeys = first((a) => a.match.access_keys)
  const aws = first((a) => a.match.aws)
  const images = first((a) => a.match.images)
  const hosts = first((a) => a.match.hosts)
  const k8sMatch = compileK8sMatch(agents)
  const found = (index: number, kind: RegistryMatch['kind']): RegistryMatch | undefined =>
    index === Number.POSITIVE_INFINITY ? undefined : { id: (agents[index] as AgentConfig).id, kind }
  return (id) =>
    found(accessKeys(id.access_key_id), 'access_keys') ??
    found(k8sMatch(id), 'k8s') ??
    found(Math.min(aws(id.principal_arn), aws(id.role_arn)), 'aws') ??
    found(images(id.container_image), 'images') ??
    found(hosts(id.host), 'hosts')
}

/**
 * The workload holding a link: its OIDC issuer (IRSA names no cluster without `oidc_issuer`, so the issuer
 * keeps two clusters' copies of a chart apart), cluster, namespace, service account and workload name.
 */
function holderKey(link: IdentityLink): string {
  const pod = link.k8s_pod === undefined ? '' : workloadName(link.k8s_pod)
  const issuer = link.oidc_issuer === undefined ? '' : `${link.oidc_issuer} `
  return `${issuer}${link.cluster ?? ''}/${link.k8s_namespace ?? ''}/${link.k8s_service_account ?? ''}/${pod}`
}

/** An agent's summary, and for an unregistered agent the number of its last arrival (undefined: registry). */
type Tallied = { summary: AgentSummary; arrival: number | undefined }

/**
 * Adds each resolved event to its agent's summary. At most maxAgents unregistered agents are kept: past
 * that, the tenth that arrived longest ago are forgotten at once (one at a time, every new agent past the
 * limit scanned all the others). Recency is arrival order, never event time, which the watched agent
 * chooses: alerts dated just inside max_future_skew would otherwise make every real agent the least recent.
 * Registry agents are never forgotten: the config bounds them, and a flood of new pod or session names must
 * not empty the list of the agents the operator named. An arrival is a number stored on its agent (one
 * write per event; keeping an ordered set moved the agent last with a has, a delete and an add per event,
 * 22–30 → 103–116 ns); the numbers are sorted only when agents are forgotten, once per tenth of the limit.
 */
function createTally(
  seen: Map<string, Tallied>,
  maxAgents: number,
  registered: ReadonlySet<string>,
): (event: NormalizedEvent) => void {
  let arrivals = 0
  let unregistered = 0
  const forgetEarliestArrived = (count: number) => {
    const numbers: number[] = []
    for (const t of seen.values()) if (t.arrival !== undefined) numbers.push(t.arrival)
    numbers.sort((a, b) => a - b)
    const last = numbers[Math.min(count, numbers.length) - 1]
    if (last === undefined) return
    for (const [id, t] of seen) {
      if (t.arrival === undefined || t.arrival > last) continue
      seen.delete(id)
      unregistered--
    }
  }
  return (event) => {
    const id = event.agent.id
    let tallied = seen.get(id)
    if (!tallied) {
      const isRegistered = registered.has(id)
      if (!isRegistered && unregistered >= maxAgents) forgetEarliestArrived(Math.ceil(maxAgents / 10))
      if (!isRegistered) unregistered++
      tallied = {
        summary: {
          id,
          resolved_by: event.agent.resolved_by,
          identifiers: {},
          events: { edge: 0, core: 0 },
          first_seen: event.time,
          last_seen: event.time,
        },
        arrival: isRegistered ? undefined : 0,
      }
      seen.set(id, tallied)
    }
    if (tallied.arrival !== undefined) tallied.arrival = ++arrivals
    addToSummary(tallied.summary, event)
  }
}

function addToSummary(summary: AgentSummary, event: NormalizedEvent): void {
  summary.resolved_by = event.agent.resolved_by
  summary.events[event.side]++
  if (event.time < summary.first_seen) summary.first_seen = event.time
  if (event.time > summary.last_seen) summary.last_seen = event.time
  for (const key in event.identity) {
    const kind = key as keyof IdentityFields
    const value = event.identity[kind] as string
    const values = summary.identifiers[kind]
    if (values !== undefined && (values.length >= maxIdentifiersPerKind || values.includes(value))) continue
    // A new identifier (rare): kept only while the summary has room for it.
    const text = summaryText.get(summary) ?? 0
    if (value.length > maxIdentifierLength || text + value.length > summaryTextLimit) continue
    summaryText.set(summary, text + value.length)
    if (values === undefined) summary.identifiers[kind] = [value]
    else values.push(value)
  }
}
