// Per-agent buffers of recent edge and core events, bounded twice: a cap per agent and side, and a global
// memory budget. Both shed the entry that would expire first, and count it: never silent; the cap sheds
// repeats of a kind (Falco rule, action) before the only entry of its kind (shed-order.ts).
// Layout, for memory and for the hot path: an entry is a slot in parallel arrays (entry-slots.ts: numbers
// unboxed in typed arrays, no object per entry). Each agent links its slots per side in arrival order
// (prev/next); a min-heap of slots by (expiry, seq) finds what expires or is shed first (expiry-heap.ts); a
// table of id hashes answers "seen?" (D1, seen-ids.ts). Repeated values (who, detail, and the strings
// inside them) are shared (intern-whos.ts, event-details.ts). Ids are packed into words where their shape
// allows (packed-ids.ts) and Falco output text lives in a byte arena (text-arena.ts): neither is a
// long-lived V8 string for the garbage collector to copy and walk.
import type { IdentityFields, ResolvedBy } from '../schemas/types.ts'
import { createCapShedding } from './cap-shedding.ts'
import { entryBytes, sharedBytes } from './entry-bytes.ts'
import {
  type AgentWho,
  AgentWindow,
  type CoreDetail,
  type EdgeDetail,
  EntrySlots,
  lagElsewhere,
} from './entry-slots.ts'
import { createExpiryHeap } from './expiry-heap.ts'
import { createWhoInterner } from './intern-whos.ts'
import { textId } from './packed-ids.ts'
import { sameAlertText } from './same-alert-text.ts'
import { createSeenIds } from './seen-ids.ts'

export type OverflowReason = 'agent_cap' | 'memory_budget'

export type AgentWindows = {
  slots: EntrySlots
  agents: Map<string, AgentWindow>
  window(key: string): AgentWindow
  /** Interns a Who for an agent. */
  who(window: AgentWindow, resolvedBy: ResolvedBy, identity: IdentityFields): AgentWho
  /** D1: true while an entry with this id is buffered. */
  has(id: string): boolean
  /** The slot of the entry the last has() that answered true found. */
  found(): number
  /** S1: when the entry at `slot` is evicted. */
  expiry(slot: number): number
  /**
   * Buffers an entry in its who's window (no shedding yet: call settle after probing with it); returns its
   * slot. Positional, no entry object: this runs for every buffered event.
   */
  insert(
    who: AgentWho,
    detail: EdgeDetail | CoreDetail,
    id: string,
    time: number,
    mask: number,
    expiry: number,
    seq: number,
    lag: number,
    output: string,
  ): number
  /**
   * The buffered edge entry a new alert folds into, or −1 (collapse-repeats: see foldInto). `span`: the
   * smallest before + after over the rules in `mask`.
   */
  foldTarget(
    who: AgentWho,
    detail: EdgeDetail,
    mask: number,
    time: number,
    output: string,
    span: number,
  ): number
  /** Folds an alert at `time` into the entry at `slot`, kept until `expiry` at least; returns the entry's previous latest time. */
  fold(slot: number, time: number, expiry: number): number
  /** Restores an entry's folded repeats from a checkpoint. */
  restoreRepeats(slot: number, repeats: number, last: number): void
  /**
   * Applies the per-agent cap (never shedding `slot` itself) and the memory budget; true when this entry
   * made its agent side start shedding (a flood began: a signal of its own).
   */
  settle(slot: number): boolean
  evictExpired(streamTime: number): number
  /** Live slots in buffer (seq) order. */
  liveSlots(): number[]
  buffered(): number
  bytes(): number
  overflow: Record<OverflowReason, number>
  /** Slots added and ids removed since the last call (only with trackChanges), for incremental checkpoints. */
  takeChanges(): { added: number[]; removed: string[] }
  /** The entry at `slot` was restored from the checkpoint: only its removal is a change (call before settle). */
  restored(slot: number): void
  /** An entry of the checkpoint that is not buffered again (none of its rules is left): a removal. */
  notRestored(id: string): void
}

/**
 * Repeats kept as entries of their own before collapsing: an agent side folds a new alert into an earlier
 * identical one only once it holds this many entries of the alert's kind, so ordinary input (a few alerts
 * of a kind in a window) pairs exactly as it always did, each alert with its own id.
 */
export const exactRepeats = 32
/** How far back from the newest entry of the agent side a fold target is looked for. */
const foldLookback = 64
/** Estimated bytes of one agent's count of buffered entries of one kind (a Map entry). */
const kindCountBytes = 48

const initialCapacity = 1024

export function createAgentWindows(limits: {
  maxPerAgentSide: number
  memoryBudgetBytes: number
  trackChanges?: boolean
  /** Called when no buffered entry holds a detail any more (its interner may drop it). */
  onDetailReleased?: (detail: EdgeDetail | CoreDetail) => void
}): AgentWindows {
  const agents = new Map<string, AgentWindow>()
  const s = new EntrySlots(initialCapacity)
  const overflow: Record<OverflowReason, number> = { agent_cap: 0, memory_budget: 0 }
  let used = 0
  let freeHead = -1
  let count = 0
  let bytes = 0
  // Buffered entries per shared detail, so its bytes count once while any is buffered (a who counts its own).
  const sharedRefs = new Map<EdgeDetail | CoreDetail, number>()
  const hold = (detail: EdgeDetail | CoreDetail) => {
    const n = sharedRefs.get(detail)
    if (n === undefined) {
      sharedRefs.set(detail, 1)
      bytes += sharedBytes(detail)
    } else sharedRefs.set(detail, n + 1)
  }
  const release = (detail: EdgeDetail | CoreDetail) => {
    const n = sharedRefs.get(detail) as number
    if (n > 1) sharedRefs.set(detail, n - 1)
    else {
      sharedRefs.delete(detail)
      bytes -= sharedBytes(detail)
      limits.onDetailReleased?.(detail)
    }
  }
  const track = limits.trackChanges ?? false
  // The slots added (or folded into) since the last takeChanges(), in the order they were first added:
  // `addedAt` holds a slot's place in `addedSlots` plus one (0: not added), and a slot that goes before
  // the take leaves −1 in its place. Kept by slot, not by id: an id would be unpacked and hashed for
  // every entry buffered and removed (about 8 % of the correlator's time on the pipeline's events).
  let addedAt = new Int32Array(track ? initialCapacity : 0)
  let addedSlots: number[] = []
  let addedGone = 0
  let removed = new Set<string>()
  const markAdded = (slot: number) => {
    if (addedAt[slot] === 0) addedAt[slot] = addedSlots.push(slot)
  }
  /** Unmarks an added slot; false if it was not added since the last take. */
  const unmarkAdded = (slot: number): boolean => {
    const at = addedAt[slot] as number
    if (at === 0) return false
    addedSlots[at - 1] = -1
    addedAt[slot] = 0
    // Entries that come and go between two takes leave at most as many holes as live places, plus a few.
    if (++addedGone > 1024 && 2 * addedGone > addedSlots.length) {
      const kept: number[] = []
      for (const x of addedSlots) if (x !== -1) addedAt[x] = kept.push(x)
      addedSlots = kept
      addedGone = 0
    }
    return true
  }
  const who = createWhoInterner()
  const sheds = createCapShedding(
    s,
    (slot) => expiry(slot),
    limits.maxPerAgentSide,
    (slot) => remove(slot),
  )
  const expiries = createExpiryHeap(s, initialCapacity)
  const seen = createSeenIds(s, initialCapacity)

  const window = (key: string): AgentWindow => {
    let w = agents.get(key)
    if (!w) {
      w = new AgentWindow(key)
      agents.set(key, w)
    }
    return w
  }

  // --- slots ---
  const allocate = (): number => {
    if (freeHead !== -1) {
      const slot = freeHead
      freeHead = s.next[slot] as number
      return slot
    }
    if (used === s.capacity) {
      const capacity = Math.ceil(s.capacity * 1.25)
      s.grow(capacity)
      expiries.grow(capacity)
      if (track) {
        const grown = new Int32Array(capacity)
        grown.set(addedAt)
        addedAt = grown
      }
    }
    return used++
  }

  const storeLag = (slot: number, lag: number) => {
    if ((lag | 0) === lag && lag !== lagElsewhere) s.lag[slot] = lag
    else {
      s.lag[slot] = lagElsewhere
      s.lagExact.set(slot, lag)
    }
  }

  /** The estimate of what the entry at `slot` costs (entryBytes). */
  const cost = (slot: number): number => {
    const flags = s.flags[slot] as number
    const idText = flags >> 1 === textId ? s.idText.get(slot) : undefined
    if ((flags & 1) === 0) return entryBytes(idText, 0, undefined)
    const inArena = s.arena.has(slot)
    return entryBytes(
      idText,
      inArena ? s.arena.bytesOf(slot) : 0,
      inArena ? undefined : s.outputText.get(slot),
    )
  }

  const insert = (
    who: AgentWho,
    detail: EdgeDetail | CoreDetail,
    id: string,
    time: number,
    mask: number,
    expiry: number,
    seq: number,
    lag: number,
    output: string,
  ): number => {
    const slot = allocate()
    const w = who.window
    const edge = detail.side === 'edge'
    s.whos[slot] = who
    s.details[slot] = detail
    s.time[slot] = time
    s.last[slot] = time
    s.repeats[slot] = 0
    s.seq[slot] = seq
    storeLag(slot, lag)
    s.mask[slot] = mask
    s.flags[slot] = edge ? 1 : 0
    const h = seen.store(slot, id)
    if (edge && !s.arena.put(slot, output)) s.outputText.set(slot, output)
    s.next[slot] = -1
    if (edge) {
      s.prev[slot] = w.edgeTail
      if (w.edgeTail === -1) w.edgeHead = slot
      else s.next[w.edgeTail] = slot
      w.edgeTail = slot
    } else {
      s.prev[slot] = w.coreTail
      if (w.coreTail === -1) w.coreHead = slot
      else s.next[w.coreTail] = slot
      w.coreTail = slot
    }
    if (w.edges + w.cores === 0) agents.set(w.key, w)
    if (edge) {
      w.edges++
      w.edgeKinds ??= new Map()
      const kinds = w.edgeKinds
      const n = kinds.get(detail as EdgeDetail)
      if (n === undefined) bytes += kindCountBytes
      kinds.set(detail as EdgeDetail, (n ?? 0) + 1)
    } else w.cores++
    count++
    bytes += cost(slot)
    hold(detail)
    if (who.entries++ === 0) bytes += sharedBytes(who.identity)
    seen.add(slot, h, count)
    expiries.push(slot, expiry)
    // An id removed since the last takeChanges() stays in `removed`: the checkpoint may still hold that
    // earlier entry, and if this one goes too before the next take, only `removed` deletes it there.
    // Checkpoints apply removed before added, so an id in both is written again.
    if (track) markAdded(slot)
    return slot
  }

  const remove = (slot: number) => {
    const who = s.whos[slot] as AgentWho
    const w = who.window
    bytes -= cost(slot)
    release(s.details[slot] as EdgeDetail | CoreDetail)
    if (--who.entries === 0) bytes -= sharedBytes(who.identity)
    count--
    seen.remove(slot)
    expiries.remove(slot)
    if (track && !unmarkAdded(slot)) removed.add(s.id(slot))
    const prev = s.prev[slot] as number
    const next = s.next[slot] as number
    if (prev !== -1) s.next[prev] = next
    if (next !== -1) s.prev[next] = prev
    if (s.isEdge(slot)) {
      const kinds = w.edgeKinds as Map<EdgeDetail, number>
      const detail = s.details[slot] as EdgeDetail
      const n = kinds.get(detail) as number
      if (n > 1) kinds.set(detail, n - 1)
      else {
        kinds.delete(detail)
        bytes -= kindCountBytes
      }
      if (w.edgeHead === slot) w.edgeHead = next
      if (w.edgeTail === slot) w.edgeTail = prev
      w.edges--
      sheds.forget(w, true, slot)
    } else {
      if (w.coreHead === slot) w.coreHead = next
      if (w.coreTail === slot) w.coreTail = prev
      w.cores--
      sheds.forget(w, false, slot)
    }
    if (w.edges + w.cores === 0) agents.delete(w.key)
    const flags = s.flags[slot] as number
    if (flags >> 1 === textId) s.idText.delete(slot)
    if ((flags & 1) === 1 && !s.arena.drop(slot)) s.outputText.delete(slot)
    if (s.lag[slot] === lagElsewhere) s.lagExact.delete(slot)
    s.whos[slot] = null
    s.details[slot] = null
    s.next[slot] = freeHead
    freeHead = slot
  }

  const expiry = expiries.expiry

  const foldTarget = (
    who: AgentWho,
    detail: EdgeDetail,
    mask: number,
    time: number,
    output: string,
    span: number,
  ): number => {
    const w = who.window
    if ((w.edgeKinds?.get(detail) ?? 0) < exactRepeats) return -1
    let x = w.edgeTail
    for (let looked = 0; x !== -1 && looked < foldLookback; looked++, x = s.prev[x] as number) {
      if (s.details[x] !== detail || s.whos[x] !== who || s.mask[x] !== mask) continue
      if (!sameAlertText(s.output(x), output)) continue
      // The newest identical entry, and only when the alert falls from its first time to before + after
      // past it: then the windows of all it stands for make one span, [first − before, last + after].
      const first = s.time[x] as number
      return time >= first && time - first <= span ? x : -1
    }
    return -1
  }

  const fold = (slot: number, time: number, newExpiry: number): number => {
    const previous = s.last[slot] as number
    if (time > previous) s.last[slot] = time
    if ((s.repeats[slot] as number) < 0x7fffffff) s.repeats[slot] = (s.repeats[slot] as number) + 1
    if (newExpiry > expiries.expiry(slot)) {
      expiries.extend(slot, newExpiry)
      // The side's shed order queued the entry under its old expiry: rebuild it from the buffers.
      const w = (s.whos[slot] as AgentWho).window
      sheds.requeue(w)
    }
    if (track) markAdded(slot)
    return previous
  }

  const restoreRepeats = (slot: number, repeats: number, last: number) => {
    s.repeats[slot] = repeats
    s.last[slot] = last
  }

  const settle = (slot: number): boolean => {
    const capped = sheds.settle(slot)
    if (capped !== 0) overflow.agent_cap++
    while (bytes > limits.memoryBudgetBytes && expiries.size() > 0) {
      remove(expiries.top())
      overflow.memory_budget++
    }
    return capped === 2
  }

  const evictExpired = (streamTime: number) => {
    let evicted = 0
    while (expiries.size() > 0 && expiries.topKey() < streamTime) {
      remove(expiries.top())
      evicted++
    }
    return evicted
  }

  const liveSlots = () => {
    const slots: number[] = []
    for (let slot = 0; slot < used; slot++) if (s.whos[slot] !== null) slots.push(slot)
    return slots.sort((a, b) => (s.seq[a] as number) - (s.seq[b] as number))
  }

  return {
    slots: s,
    agents,
    window,
    who,
    has: seen.has,
    found: seen.found,
    expiry,
    insert,
    foldTarget,
    fold,
    restoreRepeats,
    settle,
    evictExpired,
    liveSlots,
    buffered: () => count,
    bytes: () => bytes,
    overflow,
    takeChanges: () => {
      const slots: number[] = []
      for (const slot of addedSlots) {
        if (slot === -1) continue
        slots.push(slot)
        addedAt[slot] = 0
      }
      const changes = { added: slots, removed: [...removed] }
      addedSlots = []
      addedGone = 0
      removed = new Set()
      return changes
    },
    restored: (slot) => {
      if (track) unmarkAdded(slot)
    },
    notRestored: (id) => {
      if (track) removed.add(id)
    },
  }
}
