// Per-agent buffers of recent edge and core events, bounded twice: a cap per agent and side, and a global
// memory budget. Both shed the entry that would expire first, and count it: never silent; the cap sheds
// repeats of a kind (Falco rule, action) before the only entry of its kind (shed-order.ts).
// Layout, for memory and for the hot path: an entry is a slot in parallel arrays (numbers unboxed in typed
// arrays, no object per entry). Each agent links its slots per side in arrival order (prev/next); a min-heap
// of slots by (expiry, seq) finds what expires or is shed first; an open-addressing table of id hashes
// answers "seen?" (D1). Repeated values (who, detail, and the strings inside them) are shared. Ids are
// packed into words where their shape allows (packed-ids.ts) and Falco output text lives in a byte arena
// (text-arena.ts): neither is a long-lived V8 string for the garbage collector to copy and walk.
import type { IdentityFields, ResolvedBy } from '../schemas/types.ts'
import { entryBytes, sharedBytes } from './entry-bytes.ts'
import {
  AgentWho,
  AgentWindow,
  type CoreDetail,
  type EdgeDetail,
  EntrySlots,
  lagElsewhere,
} from './entry-slots.ts'
import { hashPacked, hashText, idWords, packId, samePacked, textId } from './packed-ids.ts'
import { sameAlertText } from './same-alert-text.ts'
import { createSharedValues } from './shared-values.ts'
import { ShedOrder, uniqueBit } from './shed-order.ts'

export type OverflowReason = 'agent_cap' | 'memory_budget'

export type AgentWindows = {
  slots: EntrySlots
  agents: Map<string, AgentWindow>
  window(key: string): AgentWindow
  /** Interns a Who for an agent. */
  who(window: AgentWindow, resolvedBy: ResolvedBy, identity: IdentityFields): AgentWho
  /** D1: true while an entry with this id is buffered. */
  has(id: string): boolean
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
}

const maxWhosPerAgent = 16
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

const repeatedIdentityFields = [
  'k8s_namespace',
  'k8s_service_account',
  'cluster',
  'container_image',
  'host',
  'account_id',
] as const satisfies readonly (keyof IdentityFields)[]
const initialCapacity = 1024

/**
 * Same identity: the IdentityFields compared one by one (a for-in over both objects cost more than the rest
 * of interning). Ingest sets only defined fields and checkpoints are JSON, so a field is either set or
 * absent: equal fields mean equal own keys and values, as the for-in checked.
 */
function sameIdentity(a: IdentityFields, b: IdentityFields): boolean {
  return (
    a === b ||
    (a.k8s_pod === b.k8s_pod &&
      a.role_arn === b.role_arn &&
      a.principal_arn === b.principal_arn &&
      a.container_id === b.container_id &&
      a.k8s_namespace === b.k8s_namespace &&
      a.k8s_service_account === b.k8s_service_account &&
      a.k8s_pod_uid === b.k8s_pod_uid &&
      a.cluster === b.cluster &&
      a.container_image === b.container_image &&
      a.host === b.host &&
      a.session_name === b.session_name &&
      a.access_key_id === b.access_key_id &&
      a.account_id === b.account_id)
  )
}

const sameWho = (known: AgentWho, resolvedBy: ResolvedBy, identity: IdentityFields) =>
  known.resolved_by === resolvedBy && sameIdentity(known.identity, identity)

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
  // Buffered entries per shared detail and per identity, so their bytes count once while any is buffered.
  const sharedRefs = new Map<object, number>()
  const hold = (value: object) => {
    const n = sharedRefs.get(value)
    if (n === undefined) {
      sharedRefs.set(value, 1)
      bytes += sharedBytes(value)
    } else sharedRefs.set(value, n + 1)
  }
  const release = (value: object) => {
    const n = sharedRefs.get(value) as number
    if (n > 1) sharedRefs.set(value, n - 1)
    else {
      sharedRefs.delete(value)
      bytes -= sharedBytes(value)
      if ('side' in value) limits.onDetailReleased?.(value as EdgeDetail | CoreDetail)
    }
  }
  const track = limits.trackChanges ?? false
  let added = new Map<string, number>()
  let removed = new Set<string>()
  // Shed order of the agent sides that went over the cap (shed-order.ts), dropped below half of it. Derived
  // state: not counted in `bytes` (24 bytes per queued entry, at most about twice the side's entries), so
  // that shedding never depends on history a restart does not rebuild.
  const edgeSheds = new Map<AgentWindow, ShedOrder>()
  const coreSheds = new Map<AgentWindow, ShedOrder>()
  const dropShedOrderBelow = limits.maxPerAgentSide / 2

  // Min-heap of slots by (expiry, seq). The expiry lives only here, beside the heap order, so sifting reads
  // packed memory; expiry(slot) finds it through heapPos.
  let heap = new Int32Array(initialCapacity)
  let heapKey = new Float64Array(initialCapacity)
  let heapSize = 0

  // Seen table: per cell two Int32s, slot + 1 (0: empty) and the id's hash, so probing and deleting read
  // the table alone, not the slots of other ids; linear probing, at most three quarters full.
  let table = new Int32Array(initialCapacity * 4)
  let tableMask = initialCapacity * 2 - 1

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

  const window = (key: string): AgentWindow => {
    let w = agents.get(key)
    if (!w) {
      w = new AgentWindow(key)
      agents.set(key, w)
    }
    return w
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
    else {
      // A new array of exactly the needed length: push would reserve room for 17 per agent.
      const kept = whos.length >= maxWhosPerAgent ? whos.slice(1) : whos
      w.whos = [...kept, fresh]
    }
    return fresh
  }

  // --- seen table ---
  // has() is asked just before insert() with the same id: its packed words, kind and hash are kept for insert.
  const probe = new Int32Array(idWords)
  let lastId = ''
  let lastKind = textId
  let lastHash = 0
  const has = (id: string): boolean => {
    const kind = packId(id, probe, 0)
    const h = kind === textId ? hashText(id) : hashPacked(kind, probe, 0)
    lastId = id
    lastKind = kind
    lastHash = h
    for (let i = h & tableMask; table[2 * i] !== 0; i = (i + 1) & tableMask) {
      if (table[2 * i + 1] !== h) continue
      const slot = (table[2 * i] as number) - 1
      if ((s.flags[slot] as number) >> 1 !== kind) continue
      if (kind === textId ? s.idText.get(slot) === id : samePacked(s.words, slot * idWords, probe, 0))
        return true
    }
    return false
  }
  const tableInsert = (slot: number, h: number) => {
    let i = h & tableMask
    while (table[2 * i] !== 0) i = (i + 1) & tableMask
    table[2 * i] = slot + 1
    table[2 * i + 1] = h
  }
  const tableDelete = (slot: number, h: number) => {
    let i = h & tableMask
    while (table[2 * i] !== slot + 1) i = (i + 1) & tableMask
    // Backward-shift deletion keeps every probe run unbroken.
    for (let j = (i + 1) & tableMask; table[2 * j] !== 0; j = (j + 1) & tableMask) {
      const home = (table[2 * j + 1] as number) & tableMask
      if (((j - home) & tableMask) >= ((j - i) & tableMask)) {
        table[2 * i] = table[2 * j] as number
        table[2 * i + 1] = table[2 * j + 1] as number
        i = j
      }
    }
    table[2 * i] = 0
  }
  const tableGrow = () => {
    const old = table
    table = new Int32Array(old.length * 2)
    tableMask = table.length / 2 - 1
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] !== 0) tableInsert((old[i] as number) - 1, old[i + 1] as number)
    }
  }
  /** The hash of the id kept in `slot`, as has() computed it. */
  const hashOf = (slot: number) => {
    const kind = (s.flags[slot] as number) >> 1
    return kind === textId
      ? hashText(s.idText.get(slot) as string)
      : hashPacked(kind, s.words, slot * idWords)
  }

  // --- heap ---
  const less = (i: number, j: number) => {
    const a = heapKey[i] as number
    const b = heapKey[j] as number
    return a < b || (a === b && (s.seq[heap[i] as number] as number) < (s.seq[heap[j] as number] as number))
  }
  const place = (pos: number, slot: number, key: number) => {
    heap[pos] = slot
    heapKey[pos] = key
    s.heapPos[slot] = pos
  }
  const siftUp = (pos: number) => {
    const slot = heap[pos] as number
    const key = heapKey[pos] as number
    const seq = s.seq[slot] as number
    while (pos > 0) {
      const parent = (pos - 1) >> 1
      const pk = heapKey[parent] as number
      if (pk < key || (pk === key && (s.seq[heap[parent] as number] as number) < seq)) break
      place(pos, heap[parent] as number, pk)
      pos = parent
    }
    place(pos, slot, key)
  }
  const siftDown = (pos: number) => {
    for (;;) {
      const l = 2 * pos + 1
      const r = l + 1
      let m = pos
      if (l < heapSize && less(l, m)) m = l
      if (r < heapSize && less(r, m)) m = r
      if (m === pos) return
      const slot = heap[pos] as number
      const key = heapKey[pos] as number
      place(pos, heap[m] as number, heapKey[m] as number)
      place(m, slot, key)
      pos = m
    }
  }
  const heapRemove = (pos: number) => {
    heapSize--
    if (pos === heapSize) return
    place(pos, heap[heapSize] as number, heapKey[heapSize] as number)
    siftDown(pos)
    siftUp(pos)
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
      const h = new Int32Array(capacity)
      h.set(heap)
      heap = h
      const k = new Float64Array(capacity)
      k.set(heapKey)
      heapKey = k
    }
    return used++
  }

  /** Keeps the id in the slot's words (or as text) and returns its hash. */
  const storeId = (slot: number, id: string): number => {
    const at = slot * idWords
    let kind = lastKind
    let h = lastHash
    if (id === lastId) s.words.set(probe, at)
    else {
      kind = packId(id, s.words, at)
      h = kind === textId ? hashText(id) : hashPacked(kind, s.words, at)
    }
    if (kind === textId) s.idText.set(slot, id)
    s.flags[slot] = (kind << 1) | (s.flags[slot] as number)
    return h
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
    const h = storeId(slot, id)
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
    hold(who.identity)
    if (4 * count > 3 * (tableMask + 1)) tableGrow()
    tableInsert(slot, h)
    heapKey[heapSize] = expiry
    heap[heapSize] = slot
    heapSize++
    siftUp(heapSize - 1)
    if (track) {
      removed.delete(id)
      added.set(id, slot)
    }
    return slot
  }

  const remove = (slot: number) => {
    const w = (s.whos[slot] as AgentWho).window
    bytes -= cost(slot)
    release(s.details[slot] as EdgeDetail | CoreDetail)
    release((s.whos[slot] as AgentWho).identity)
    count--
    tableDelete(slot, hashOf(slot))
    heapRemove(s.heapPos[slot] as number)
    if (track) {
      const id = s.id(slot)
      if (added.get(id) === slot) added.delete(id)
      else removed.add(id)
    }
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
      if (edgeSheds.size !== 0) edgeSheds.get(w)?.forget(kindOf(slot))
      if (edgeSheds.size !== 0 && w.edges < dropShedOrderBelow) edgeSheds.delete(w)
    } else {
      if (w.coreHead === slot) w.coreHead = next
      if (w.coreTail === slot) w.coreTail = prev
      w.cores--
      if (coreSheds.size !== 0) coreSheds.get(w)?.forget(kindOf(slot))
      if (coreSheds.size !== 0 && w.cores < dropShedOrderBelow) coreSheds.delete(w)
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

  const expiry = (slot: number) => heapKey[s.heapPos[slot] as number] as number

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
    const pos = s.heapPos[slot] as number
    if (newExpiry > (heapKey[pos] as number)) {
      heapKey[pos] = newExpiry
      siftDown(pos)
      // The side's shed order queued the entry under its old expiry: rebuild it from the buffers.
      const w = (s.whos[slot] as AgentWho).window
      if (edgeSheds.size !== 0 && edgeSheds.has(w)) shedOrderOf(w, true, -1)
    }
    if (track) added.set(s.id(slot), slot)
    return previous
  }

  const restoreRepeats = (slot: number, repeats: number, last: number) => {
    s.repeats[slot] = repeats
    s.last[slot] = last
  }
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
      if (x !== except) order.push(shedKey(order, x), s.seq[x] as number, x)
    }
    const sheds = isEdge ? edgeSheds : coreSheds
    sheds.set(w, order)
    return order
  }

  const shedKey = (order: ShedOrder, slot: number) =>
    expiry(slot) + (order.kinds.get(kindOf(slot)) === 1 ? uniqueBit : 0)

  /**
   * The entry to shed: repeats before the only one of its kind. An entry queued as a repeat may have
   * become unique since (its siblings were shed or expired): it is queued again as unique, and the next
   * one is tried.
   */
  const shedVictim = (order: ShedOrder): number => {
    for (;;) {
      const victim = order.popLive(isLive)
      if (victim === -1 || order.lastKey >= uniqueBit || order.kinds.get(kindOf(victim)) !== 1) return victim
      order.push(order.lastKey + uniqueBit, s.seq[victim] as number, victim)
    }
  }

  const settle = (slot: number): boolean => {
    const w = (s.whos[slot] as AgentWho).window
    let began = false
    const isEdge = s.isEdge(slot)
    const sheds = isEdge ? edgeSheds : coreSheds
    // No lookup while no agent is over its cap, as almost always.
    let order = sheds.size === 0 ? undefined : sheds.get(w)
    let noted = false
    if ((isEdge ? w.edges : w.cores) > limits.maxPerAgentSide) {
      if (order === undefined) {
        order = shedOrderOf(w, isEdge, slot)
        began = true
      }
      // The newcomer counts as one of its kind before choosing, so it never protects a kind it repeats.
      order.note(kindOf(slot))
      noted = true
      const victim = shedVictim(order)
      if (victim !== -1) remove(victim)
      overflow.agent_cap++
    }
    // Entries that expired (or went to the memory budget) stay queued until they surface. A side that
    // stays under its cap never pops them: rebuild once they outnumber the live entries.
    if (order !== undefined) {
      if (!noted) order.note(kindOf(slot))
      if (order.size > 2 * (isEdge ? w.edges : w.cores) + 8) shedOrderOf(w, isEdge, -1)
      else order.push(shedKey(order, slot), s.seq[slot] as number, slot)
    }
    while (bytes > limits.memoryBudgetBytes && heapSize > 0) {
      remove(heap[0] as number)
      overflow.memory_budget++
    }
    return began
  }

  const evictExpired = (streamTime: number) => {
    let evicted = 0
    while (heapSize > 0 && (heapKey[0] as number) < streamTime) {
      remove(heap[0] as number)
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
    has,
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
      const changes = { added: [...added.values()], removed: [...removed] }
      added = new Map()
      removed = new Set()
      return changes
    },
  }
}
