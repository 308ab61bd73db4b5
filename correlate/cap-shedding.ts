// The per-agent cap's choice of what to shed: each agent side over the cap keeps a shed order (shed-order.ts)
// of its entries, repeats of a kind (Falco rule, action) before the only entry of its kind, each by expiry.
import type { AgentWho, AgentWindow, CoreDetail, EdgeDetail, EntrySlots } from './entry-slots.ts'
import { ShedOrder, uniqueBit } from './shed-order.ts'

export type CapShedding = {
  /** An entry left its agent side (`remove` below, expiry or the memory budget). */
  forget(w: AgentWindow, isEdge: boolean, slot: number): void
  /** An edge entry's expiry moved (a fold): its side's order, if it has one, is built again. */
  requeue(w: AgentWindow): void
  /**
   * Applies the cap after `slot` joined its side (never shedding `slot` itself, shed through `remove`): 0
   * under the cap, 1 over it, 2 over it and this entry made the side start shedding (a flood began).
   */
  settle(slot: number): 0 | 1 | 2
}

export function createCapShedding(
  s: EntrySlots,
  expiry: (slot: number) => number,
  maxPerAgentSide: number,
  remove: (slot: number) => void,
): CapShedding {
  // Shed order of the agent sides that went over the cap (shed-order.ts), dropped below half of it. Derived
  // state: not counted in `bytes` (24 bytes per queued entry, at most about twice the side's entries, and
  // an object per kind queued as unique), so that shedding never depends on history a restart does not
  // rebuild.
  const edgeSheds = new Map<AgentWindow, ShedOrder>()
  const coreSheds = new Map<AgentWindow, ShedOrder>()
  const dropShedOrderBelow = maxPerAgentSide / 2
  /** Seqs are unique: a slot still holding the seq it was queued with is the same live entry. */
  const isLive = (slot: number, seq: number) => s.whos[slot] !== null && s.seq[slot] === seq

  /** What makes entries repeats of each other: the Falco rule of an edge entry, the action of a core one. */
  const kindOf = (slot: number): string => {
    const detail = s.details[slot] as EdgeDetail | CoreDetail
    return detail.side === 'edge' ? detail.rule : detail.action
  }

  /** The shed order of one agent side, from its list (all of it but `except`). */
  const shedOrderOf = (w: AgentWindow, isEdge: boolean, except: number): ShedOrder => {
    const order = new ShedOrder()
    for (let x = isEdge ? w.edgeHead : w.coreHead; x !== -1; x = s.next[x] as number) {
      if (x !== except) order.note(kindOf(x))
    }
    for (let x = isEdge ? w.edgeHead : w.coreHead; x !== -1; x = s.next[x] as number) {
      if (x !== except) queue(order, shedKey(order, x), x)
    }
    const sheds = isEdge ? edgeSheds : coreSheds
    sheds.set(w, order)
    return order
  }

  const shedKey = (order: ShedOrder, slot: number) =>
    expiry(slot) + (order.kinds.get(kindOf(slot)) === 1 ? uniqueBit : 0)

  /** Queues `slot` by `key`, remembering it when queued as the only one of its kind. */
  const queue = (order: ShedOrder, key: number, slot: number) => {
    const seq = s.seq[slot] as number
    order.push(key, seq, slot)
    if (key >= uniqueBit) order.queuedUnique.set(kindOf(slot), { slot, seq })
  }

  /**
   * Counts a newcomer's kind. The entry that was the only one of that kind is a repeat from now on: it is
   * queued again by its bare expiry (its unique place stays queued, skipped once it is gone), so it is shed
   * among the repeats, as from an order built afresh after a restart.
   */
  const noteNewcomer = (order: ShedOrder, slot: number) => {
    const kind = kindOf(slot)
    if (order.note(kind) !== 2) return
    const sole = order.queuedUnique.get(kind)
    if (sole === undefined) return
    order.queuedUnique.delete(kind)
    if (sole.slot !== slot && isLive(sole.slot, sole.seq)) order.push(expiry(sole.slot), sole.seq, sole.slot)
  }

  /**
   * The entry to shed: repeats before the only one of its kind. An entry queued as a repeat may have
   * become unique since (its siblings were shed or expired): it is queued again as unique, and the next
   * one is tried.
   */
  const shedVictim = (order: ShedOrder): number => {
    for (;;) {
      const victim = order.popLive(isLive)
      if (victim === -1 || order.lastKey >= uniqueBit || order.kinds.get(kindOf(victim)) !== 1) return victim
      queue(order, order.lastKey + uniqueBit, victim)
    }
  }

  const settle = (slot: number): 0 | 1 | 2 => {
    const w = (s.whos[slot] as AgentWho).window
    let began = false
    const isEdge = s.isEdge(slot)
    const sheds = isEdge ? edgeSheds : coreSheds
    // No lookup while no agent is over its cap, as almost always.
    let order = sheds.size === 0 ? undefined : sheds.get(w)
    let noted = false
    if ((isEdge ? w.edges : w.cores) > maxPerAgentSide) {
      if (order === undefined) {
        order = shedOrderOf(w, isEdge, slot)
        began = true
      }
      // The newcomer counts as one of its kind before choosing, so it never protects a kind it repeats.
      noteNewcomer(order, slot)
      noted = true
      const victim = shedVictim(order)
      if (victim !== -1) remove(victim)
    }
    // Entries that expired (or went to the memory budget) stay queued until they surface. A side that
    // stays under its cap never pops them: rebuild once they outnumber the live entries.
    if (order !== undefined) {
      if (!noted) noteNewcomer(order, slot)
      if (order.size > 2 * (isEdge ? w.edges : w.cores) + 8) shedOrderOf(w, isEdge, -1)
      else queue(order, shedKey(order, slot), slot)
    }
    return noted ? (began ? 2 : 1) : 0
  }

  return {
    forget: (w, isEdge, slot) => {
      const sheds = isEdge ? edgeSheds : coreSheds
      if (sheds.size === 0) return
      sheds.get(w)?.forget(kindOf(slot))
      if ((isEdge ? w.edges : w.cores) < dropShedOrderBelow) sheds.delete(w)
    },
    requeue: (w) => {
      if (edgeSheds.size !== 0 && edgeSheds.has(w)) shedOrderOf(w, true, -1)
    },
    settle,
  }
}
