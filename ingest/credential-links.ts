// The learned credential links (access key id → the workload holding the key), bounded so that one
// workload's volume can only ever cost that workload. The watched agent chooses how many keys it asks STS
// for: every sts:AssumeRole signed with its linked key adds a chained link, and every
// AssumeRoleWithWebIdentity with its own service-account token an issuing link. So each workload (holder)
// holds at most maxChainedPerWorkload chained and maxIssuedPerWorkload issuing links, and past either cap
// its own oldest link of that kind goes. When the whole table passes maxLinks (many workloads at once),
// the link that goes is one of the workload holding the most links: its oldest chained link, else its
// oldest issuing link. A flood therefore evicts links of workloads holding at least as many as the
// flooder, and once it holds the most, only its own. Every link forgotten is reported to onEvicted.
import type { IdentityLink } from '../schemas/types.ts'

export type CredentialLinks = {
  get(keyId: string): IdentityLink | undefined
  set(link: IdentityLink): void
  values(): IterableIterator<IdentityLink>
}

export function createCredentialLinks(options: {
  maxLinks: number
  maxChainedPerWorkload: number
  maxIssuedPerWorkload: number
  /** The workload holding a link: links with the same holder share its caps. */
  holderOf(link: IdentityLink): string
  /** `count` links of `holder` were forgotten. */
  onEvicted?(count: number, holder: string): void
}): CredentialLinks {
  const { maxLinks, maxChainedPerWorkload, maxIssuedPerWorkload, holderOf, onEvicted } = options
  const links = new Map<string, IdentityLink>()
  /** Each holder's keys, oldest first: chained and issuing apart. */
  const held = new Map<string, { chained: Set<string>; issued: Set<string> }>()
  /** Holders by how many links they hold, to find the largest at once (counts move by one). */
  const bySize = new Map<number, Set<string>>()
  let largest = 0

  const resize = (holder: string, from: number, to: number) => {
    const before = bySize.get(from)
    before?.delete(holder)
    if (before?.size === 0) bySize.delete(from)
    if (to > 0) {
      const after = bySize.get(to) ?? new Set<string>()
      bySize.set(to, after)
      after.add(holder)
    }
    if (to > largest) largest = to
    while (largest > 0 && !bySize.has(largest)) largest--
  }
  const sizeOf = (keys: { chained: Set<string>; issued: Set<string> }) => keys.chained.size + keys.issued.size

  const detach = (link: IdentityLink) => {
    const holder = holderOf(link)
    const keys = held.get(holder)
    if (!keys) return
    const size = sizeOf(keys)
    const kind = link.chained_from === undefined ? keys.issued : keys.chained
    if (!kind.delete(link.access_key_id)) return
    resize(holder, size, size - 1)
    if (size === 1) held.delete(holder)
  }
  const forget = (keyId: string) => {
    const link = links.get(keyId)
    if (!link) return
    detach(link)
    links.delete(keyId)
  }

  const set = (link: IdentityLink) => {
    const known = links.get(link.access_key_id)
    if (known) detach(known)
    links.set(link.access_key_id, link)
    const holder = holderOf(link)
    const keys = held.get(holder) ?? { chained: new Set<string>(), issued: new Set<string>() }
    held.set(holder, keys)
    const chained = link.chained_from !== undefined
    const kind = chained ? keys.chained : keys.issued
    kind.add(link.access_key_id)
    resize(holder, sizeOf(keys) - 1, sizeOf(keys))
    let evicted = 0
    const cap = chained ? maxChainedPerWorkload : maxIssuedPerWorkload
    while (kind.size > cap) {
      forget(kind.values().next().value as string)
      evicted++
    }
    if (evicted > 0) onEvicted?.(evicted, holder)
    while (links.size > maxLinks) {
      const victim = (bySize.get(largest) as Set<string>).values().next().value as string
      const victimKeys = held.get(victim) as { chained: Set<string>; issued: Set<string> }
      const oldest = victimKeys.chained.size > 0 ? victimKeys.chained : victimKeys.issued
      forget(oldest.values().next().value as string)
      onEvicted?.(1, victim)
    }
  }

  return { get: (keyId) => links.get(keyId), set, values: () => links.values() }
}
