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
  /** Each holder's links, oldest first: chained and issuing apart. */
  const held = new Map<string, { chained: Queue; issued: Queue }>()
  /** Holders by how many links they hold, to find the largest at once (counts move by one). */
  const bySize = new Map<number, Set<string>>()
  let largest = 0

  // An emptied set stays for the next holder of that size (a flood moves one holder between two sizes
  // at every link): at most one per size a holder reached, which the caps bound.
  const resize = (holder: string, from: number, to: number) => {
    bySize.get(from)?.delete(holder)
    if (to > 0) {
      let after = bySize.get(to)
      if (after === undefined) {
        after = new Set<string>()
        bySize.set(to, after)
      }
      after.add(holder)
    }
    if (to > largest) largest = to
    while (largest > 0 && (bySize.get(largest)?.size ?? 0) === 0) largest--
  }
  const sizeOf = (keys: { chained: Queue; issued: Queue }) => keys.chained.size + keys.issued.size
  /** A queue's entry is live while the table holds that very link (a replaced or forgotten one is not). */
  const live = (link: IdentityLink) => links.get(link.access_key_id) === link

  const detach = (link: IdentityLink) => {
    const holder = holderOf(link)
    const keys = held.get(holder)
    if (!keys) return
    const size = sizeOf(keys)
    const kind = link.chained_from === undefined ? keys.issued : keys.chained
    kind.size--
    resize(holder, size, size - 1)
    if (size === 1) held.delete(holder)
  }
  const forget = (link: IdentityLink) => {
    detach(link)
    links.delete(link.access_key_id)
  }

  const set = (link: IdentityLink) => {
    const known = links.get(link.access_key_id)
    if (known === link) return
    if (known) forget(known)
    links.set(link.access_key_id, link)
    const holder = holderOf(link)
    const keys = held.get(holder) ?? { chained: queue(), issued: queue() }
    held.set(holder, keys)
    const chained = link.chained_from !== undefined
    const kind = chained ? keys.chained : keys.issued
    push(kind, link, live)
    resize(holder, sizeOf(keys) - 1, sizeOf(keys))
    let evicted = 0
    const cap = chained ? maxChainedPerWorkload : maxIssuedPerWorkload
    while (kind.size > cap) {
      forget(oldest(kind, live))
      evicted++
    }
    if (evicted > 0) onEvicted?.(evicted, holder)
    while (links.size > maxLinks) {
      const victim = (bySize.get(largest) as Set<string>).values().next().value as string
      const victimKeys = held.get(victim) as { chained: Queue; issued: Queue }
      forget(oldest(victimKeys.chained.size > 0 ? victimKeys.chained : victimKeys.issued, live))
      onEvicted?.(1, victim)
    }
  }

  return { get: (keyId) => links.get(keyId), set, values: () => links.values() }
}

/**
 * Links in the order they were learned, with the entries of links since replaced or forgotten left in
 * place (skipped when met at the front): a Set's first entry is found by walking past every entry deleted
 * since its last rehash, thousands under a flood.
 */
type Queue = { items: IdentityLink[]; head: number; size: number }

const queue = (): Queue => ({ items: [], head: 0, size: 0 })

/** Appends `link`; drops the dead entries once they outnumber the live ones (links replaced in place). */
function push(q: Queue, link: IdentityLink, live: (link: IdentityLink) => boolean): void {
  if (q.items.length - q.head > 2 * q.size + 1024) {
    q.items = q.items.slice(q.head).filter(live)
    q.head = 0
  }
  q.items.push(link)
  q.size++
}

/** The oldest live link of a non-empty queue; drops the dead entries before it. */
function oldest(q: Queue, live: (link: IdentityLink) => boolean): IdentityLink {
  while (!live(q.items[q.head] as IdentityLink)) q.head++
  if (q.head > 1024 && q.head * 2 > q.items.length) {
    q.items = q.items.slice(q.head)
    q.head = 0
  }
  return q.items[q.head] as IdentityLink
}
