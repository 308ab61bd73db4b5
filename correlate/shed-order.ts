// The per-agent cap sheds, from the side of an agent that went over it, the entry that would expire first
// (earliest expiry, then earliest seq). A scan of the side found it in O(cap) for every event of an agent
// at its cap (27.6 µs per event at the default 1,000, 1.56 ms at 50,000: bench/correlator.bench.ts).
// ShedOrder keeps the side's entries in a binary min-heap instead, for O(log n). cap-shedding.ts builds one
// when a side first goes over the cap and drops it when the side falls well below; an entry removed by other
// means (expired, memory budget) stays in the heap until it surfaces, where the caller's liveness check skips
// it, or until cap-shedding.ts rebuilds the heap because such entries outnumber the live ones.
// A flood must not evict the signal: the key of an entry that is the only one of its kind on its side (one
// shell alert among 1,500 "Read sensitive file untrusted") carries uniqueBit, so every repeat is shed
// before it; among repeats, and among unique entries, the one that expires first goes first. An entry keeps
// its place as kinds come and go: one queued as a repeat that became unique is queued again when it surfaces,
// and one queued as unique is queued again as a repeat when a second of its kind comes, so the heap sheds
// what a heap built afresh (after a restart) would.

/** Added to the expiry of a unique entry: above any epoch-ms expiry, still exact in a double. */
export const uniqueBit = 2 ** 52

export class ShedOrder {
  private readonly expiry: number[] = []
  private readonly seq: number[] = []
  private readonly slot: number[] = []
  /** The key (expiry, plus uniqueBit when queued as the only one of its kind) of the slot popLive returned. */
  lastKey = 0
  /** Entries of the side per kind (Falco rule, or service:EventName): what makes an entry a repeat. */
  readonly kinds = new Map<string, number>()
  /**
   * Per kind, the entry (slot, seq) last queued as the only one of its kind: once a second one comes it is a
   * repeat, and the caller queues it again by its bare expiry.
   */
  readonly queuedUnique = new Map<string, { slot: number; seq: number }>()

  note(kind: string): number {
    const n = (this.kinds.get(kind) ?? 0) + 1
    this.kinds.set(kind, n)
    return n
  }

  forget(kind: string): void {
    const n = (this.kinds.get(kind) ?? 0) - 1
    if (n > 0) this.kinds.set(kind, n)
    else {
      this.kinds.delete(kind)
      this.queuedUnique.delete(kind)
    }
  }

  get size(): number {
    return this.slot.length
  }

  push(expiry: number, seq: number, slot: number): void {
    let at = this.slot.length
    this.expiry.push(expiry)
    this.seq.push(seq)
    this.slot.push(slot)
    while (at > 0) {
      const parent = (at - 1) >> 1
      if (!this.before(at, parent)) break
      this.swap(at, parent)
      at = parent
    }
  }

  /** Removes entries from the top until one is live; returns its slot (removed too), or -1 when none is. */
  popLive(isLive: (slot: number, seq: number) => boolean): number {
    while (this.slot.length > 0) {
      const slot = this.slot[0] as number
      const live = isLive(slot, this.seq[0] as number)
      this.lastKey = this.expiry[0] as number
      this.removeTop()
      if (live) return slot
    }
    return -1
  }

  private removeTop(): void {
    const last = this.slot.length - 1
    this.swap(0, last)
    this.expiry.pop()
    this.seq.pop()
    this.slot.pop()
    for (let at = 0; ; ) {
      const l = 2 * at + 1
      const r = l + 1
      let m = at
      if (l < last && this.before(l, m)) m = l
      if (r < last && this.before(r, m)) m = r
      if (m === at) return
      this.swap(at, m)
      at = m
    }
  }

  private before(i: number, j: number): boolean {
    const a = this.expiry[i] as number
    const b = this.expiry[j] as number
    return a < b || (a === b && (this.seq[i] as number) < (this.seq[j] as number))
  }

  private swap(i: number, j: number): void {
    const { expiry, seq, slot } = this
    const e = expiry[i] as number
    expiry[i] = expiry[j] as number
    expiry[j] = e
    const q = seq[i] as number
    seq[i] = seq[j] as number
    seq[j] = q
    const x = slot[i] as number
    slot[i] = slot[j] as number
    slot[j] = x
  }
}
