// Who an event names, interned per agent: most events of one agent carry the same identity, so its
// entries share one AgentWho (which also leads to the agent's window), and the identity values that repeat
// across agents (namespaces, clusters, images, hosts, accounts) are shared too.
import type { IdentityFields, ResolvedBy } from '../schemas/types.ts'
import { AgentWho, type AgentWindow } from './entry-slots.ts'
import { createSharedValues } from './shared-values.ts'

const maxWhosPerAgent = 16
const repeatedIdentityFields = [
  'k8s_namespace',
  'k8s_service_account',
  'cluster',
  'container_image',
  'host',
  'account_id',
] as const satisfies readonly (keyof IdentityFields)[]

/**
 * Same identity: the IdentityFields compared one by one (a for-in over both objects cost more than the rest
 * of interning). Ingest sets only defined fields and checkpoints are JSON, so a field is either set or
 * absent: equal fields mean equal own keys and values, as the for-in checked. The fields that tell one session or
 * workload from another of the same agent come first: most whos an event is compared with are another
 * credential or pod of its agent (up to 16 of them), and the first differing field ends the comparison.
 */
function sameIdentity(a: IdentityFields, b: IdentityFields): boolean {
  return (
    a === b ||
    (a.access_key_id === b.access_key_id &&
      a.k8s_pod === b.k8s_pod &&
      a.container_id === b.container_id &&
      a.session_name === b.session_name &&
      a.principal_arn === b.principal_arn &&
      a.role_arn === b.role_arn &&
      a.k8s_namespace === b.k8s_namespace &&
      a.k8s_service_account === b.k8s_service_account &&
      a.k8s_pod_uid === b.k8s_pod_uid &&
      a.cluster === b.cluster &&
      a.container_image === b.container_image &&
      a.host === b.host &&
      a.account_id === b.account_id)
  )
}

const sameWho = (known: AgentWho, resolvedBy: ResolvedBy, identity: IdentityFields) =>
  known.resolved_by === resolvedBy && sameIdentity(known.identity, identity)

/** Interns a Who for an agent: the one it already holds with the same identity, else a new one. */
export function createWhoInterner(): (
  w: AgentWindow,
  resolvedBy: ResolvedBy,
  identity: IdentityFields,
) => AgentWho {
  // Namespaces, clusters, images, hosts and accounts repeat across agents; pods, containers and
  // credentials name one agent each and are kept as they came.
  const values = createSharedValues()
  const sharedIdentity = (identity: IdentityFields): IdentityFields => {
    const copy: IdentityFields = Object.assign({}, identity)
    for (const field of repeatedIdentityFields) {
      const value = copy[field]
      if (value !== undefined) copy[field] = values.one(value)
    }
    return copy
  }

  const who = (w: AgentWindow, resolvedBy: ResolvedBy, identity: IdentityFields): AgentWho => {
    const whos = w.whos
    if (whos !== null && !Array.isArray(whos) && sameWho(whos, resolvedBy, identity)) return whos
    if (Array.isArray(whos)) {
      for (let i = 0; i < whos.length; i++) {
        if (sameWho(whos[i] as AgentWho, resolvedBy, identity)) return whos[i] as AgentWho
      }
    }
    const fresh = new AgentWho(w, resolvedBy, sharedIdentity(identity))
    if (whos === null) w.whos = fresh
    else if (!Array.isArray(whos)) w.whos = [whos, fresh]
    else if (whos.length < maxWhosPerAgent) {
      // A new array of exactly the needed length: push would reserve room for 17 per agent.
      w.whos = [...whos, fresh]
    } else {
      // Full: the oldest goes and the rest move up in place. An agent whose every call names a new session
      // or pod made a new array of 16 per call here, promoted with the calls it outlived.
      // A loop, not copyWithin: that builtin reads and writes each element as a generic property.
      const last = whos.length - 1
      for (let i = 0; i < last; i++) whos[i] = whos[i + 1] as AgentWho
      whos[last] = fresh
    }
    return fresh
  }
  return who
}
