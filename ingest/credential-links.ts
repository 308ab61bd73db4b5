// The learned credential links (access key id → the workload holding the key), bounded twice. The watched
// agent chooses how many keys it asks STS for: each sts:AssumeRole signed with its linked key adds a
// chained link. So one workload holds at most maxChainedPerWorkload chained links, and past that its
// own oldest chained links go; a key a cluster issued (IRSA, Pod Identity) is never evicted by chaining.
// Only when the whole table passes maxLinks (many workloads at once) does a tenth go, chained links first,
// earliest expiry first. Every link forgotten is reported to onEvicted.
import type { IdentityLink } from '../schemas/types.ts'

export type CredentialLinks = {
  get(keyId: string): IdentityLink | undefined
  set(link: IdentityLink): void
  values(): IterableIterator<IdentityLink>
}

export function createCredentialLinks(options: {
  maxLinks: number
  maxChainedPerWorkload: number
  /** The workload holding a link: links with the same holder share one cap. */
  holderOf(link: IdentityLink): string
  onEvicted?(count: number): void
}): CredentialLinks {
  const { maxLinks, maxChainedPerWorkload, holderOf, onEvicted } = options
  const links = new Map<string, IdentityLink>()
  /** Chained links' keys per holder, oldest first. */
  const chained = new Map<string, Set<string>>()

  const unchain = (link: IdentityLink) => {
    if (link.chained_from === undefined) return
    const holder = holderOf(link)
    const keys = chained.get(holder)
    keys?.delete(link.access_key_id)
    if (keys?.size === 0) chained.delete(holder)
  }
  const forget = (keyId: string) => {
    const link = links.get(keyId)
    if (!link) return
    unchain(link)
    links.delete(keyId)
  }

  const set = (link: IdentityLink) => {
    const known = links.get(link.access_key_id)
    if (known) unchain(known)
    links.set(link.access_key_id, link)
    let evicted = 0
    if (link.chained_from !== undefined) {
      const holder = holderOf(link)
      const keys = chained.get(holder) ?? new Set<string>()
      chained.set(holder, keys)
      keys.add(link.access_key_id)
      while (keys.size > maxChainedPerWorkload) {
        forget(keys.values().next().value as string)
        evicted++
      }
    }
    if (links.size > maxLinks) {
      const rank = (l: IdentityLink) => (l.chained_from === undefined ? 1 : 0)
      const oldest = [...links.values()]
        .sort((a, b) => rank(a) - rank(b) || a.expires - b.expires)
        .slice(0, Math.ceil(maxLinks / 10))
      for (const old of oldest) forget(old.access_key_id)
      evicted += oldest.length
    }
    if (evicted > 0) onEvicted?.(evicted)
  }

  return { get: (keyId) => links.get(keyId), set, values: () => links.values() }
}
