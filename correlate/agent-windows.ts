// Per-agent buffers of recent edge and core events, bounded twice: a cap per agent and side, and a global
// memory budget. Both shed the entry that would expire first, and count it: never silent.
// Layout, for memory and for the hot path: an entry is a slot in parallel arrays (numbers unboxed in typed
// arrays, no object per entry). Each agent links its slots per side in arrival order (prev/next); a min-heap
// of slots by (expiry, seq) finds what expires or is shed first; an open-addressing table of id hashes
// answers "seen?" (D1). Repeated values (who, detail) are shared objects.
import type { Correlation, IdentityFields, ResolvedBy } from '../schemas/types.ts'

/** Who an event names; interned per agent (most events of one agent carry the same identity). */
export type Who = { resolved_by: ResolvedBy; identity: IdentityFields }

/** What a buffered edge event keeps for the correlation record (besides id, time and output). */
export type EdgeDetail = { side: 'edge' } & Pick<
  Correlation['edge'],
  'rule' | 'priority' | 'source' | 'hostname' | 'tags'
>

/** What a buffered core event keeps for the correlation record (besides id and time). */
export type CoreDetail = { side: 'core' } & Omit<Correlation['core'], 'event_id' | 'time'>

/** One agent's buffers: a list of slots per side, oldest arrival first (−1: none). */
export class AgentWindow {
  edgeHead = -1
  edgeTail = -1
  coreHead = -1
  coreTail = -1
  edges = 0
  cores = 0
  whos: Who[] = []
  constructor(readonly key: string) {}
}

/** The buffered entries, one slot index each. Typed arrays are replaced when they grow: read them through this object. */
export class EntrySlots {
  time: Float64Array
  /** Evicted once stream time > expiry (S1, with the largest B+A+G of its rules). */
  expiry: Float64Array
  seq: Float64Array
  /** Stream time − event time when it arrived, ms (0 when ahead). */
  lag: Float64Array
  /** Rules this event passed and was on time for. */
  mask: Int32Array
  /** Hash of the id, for the seen table. */
  hash: Int32Array
  prev: Int32Array
  /** Next slot of the same agent and side; for a free slot, the next free slot. */
  next: Int32Array
  heapPos: Int32Array
  /** 1 for an edge entry, 0 for a core entry. */
  edge: Uint8Array
  readonly ids: string[] = []
  /** Falco output for edge entries, '' for core entries and free slots. */
  readonly outputs: string[] = []
  readonly whos: (Who | null)[] = []
  readonly details: (EdgeDetail | CoreDetail | null)[] = []
  /** null for a free slot. */
  readonly windows: (AgentWindow | null)[] = []

  constructor(public capacity: number) {
    this.time = new Float64Array(capacity)
    this.expiry = new Float64Array(capacity)
    this.seq = new Float64Array(capacity)
    this.lag = new Float64Array(capacity)
    this.mask = new Int32Array(capacity)
    this.hash = new Int32Array(capacity)
    this.prev = new Int32Array(capacity)
    this.next = new Int32Array(capacity)
    this.heapPos = new Int32Array(capacity)
    this.edge = new Uint8Array(capacity)
  }

  grow(capacity: number): void {
    const copy = <A extends Float64Array | Int32Array | Uint8Array>(old: A, fresh: A): A => {
      fresh.set(old)
      return fresh
    }
    this.time = copy(this.time, new Float64Array(capacity))
    this.expiry = copy(this.expiry, new Float64Array(capacity))
    this.seq = copy(this.seq, new Float64Array(capacity))
    this.lag = copy(this.lag, new Float64Array(capacity))
    this.mask = copy(this.mask, new Int32Array(capacity))
    this.hash = copy(this.hash, new Int32Array(capacity))
    this.prev = copy(this.prev, new Int32Array(capacity))
    this.next = copy(this.next, new Int32Array(capacity))
    this.heapPos = copy(this.heapPos, new Int32Array(capacity))
    this.edge = copy(this.edge, new Uint8Array(capacity))
    this.capacity = capacity
  }
}

export type NewEntry = {
  id: string
  edge: boolean
  time: number
  mask: number
  expiry: number
  seq: number
  lag: number
  who: Who
  detail: EdgeDetail | CoreDetail
  output: string
}

export type OverflowReason = 'agent_cap' | 'memory_budget'

export type AgentWindows = {
  slots: EntrySlots
  agents: Map<string, AgentWindow>
  window(key: string): AgentWindow
  /** Interns a Who for an agent. */
  who(window: AgentWindow, resolvedBy: ResolvedBy, identity: IdentityFields): Who
  /** D1: true while an entry with this id is buffered. */
  has(id: string): boolean
  /** Buffers an entry (no shedding yet: call settle after probing with it) and returns its slot. */
  insert(window: AgentWindow, entry: NewEntry): number
  /** Applies the per-agent cap (never shedding `slot` itself) and the memory budget. */
  settle(slot: number): void
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
const initialCapacity = 1024

/** Same own fields, same values (identity objects are flat: a few strings per event). */
function sameIdentity(a: IdentityFields, b: IdentityFields): boolean {
  if (a === b) return true
  let count = 0
  for (const k in a) {
    if (a[k as keyof IdentityFields] !== b[k as keyof IdentityFields]) return false
    count++
  }
  for (const _ in b) count--
  return count === 0
}

/** FNV-1a over the UTF-16 code units. */
function hashId(id: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
  return h | 0
}

/** Estimated heap bytes of one entry (slot arrays, heap, seen table, agent share, its own strings), calibrated against the heap deltas of bench/correlator.bench.ts. */
export const entryBytes = (id: string, output: string) => 240 + id.length + output.length

export function createAgentWindows(limits: {
  maxPerAgentSide: number
  memoryBudgetBytes: number
  trackChanges?: boolean
}): AgentWindows {
  const agents = new Map<string, AgentWindow>()
  const s = new EntrySlots(initialCapacity)
  const overflow: Record<OverflowReason, number> = { agent_cap: 0, memory_budget: 0 }
  let used = 0
  let freeHead = -1
  let count = 0
  let bytes = 0
  const track = limits.trackChanges ?? false
  let added = new Map<string, number>()
  let removed = new Set<string>()

  // Min-heap of slots by (expiry, seq); keys copied beside the slots so sifting reads packed memory.
  let heap = new Int32Array(initialCapacity)
  let heapKey = new Float64Array(initialCapacity)
  let heapSize = 0

  // Seen table: slot + 1 per cell (0 empty), linear probing, at most three quarters full.
  let table = new Int32Array(initialCapacity * 2)
  let tableMask = table.length - 1

  const window = (key: string): AgentWindow => {
    let w = agents.get(key)
    if (!w) {
      w = new AgentWindow(key)
      agents.set(key, w)
    }
    return w
  }

  const who = (w: AgentWindow, resolvedBy: ResolvedBy, identity: IdentityFields): Who => {
    for (const known of w.whos) {
      if (known.resolved_by === resolvedBy && sameIdentity(known.identity, identity)) return known
    }
    const fresh = { resolved_by: resolvedBy, identity }
    // A new array of exactly the needed length: push would reserve room for 17 per agent.
    const kept = w.whos.length >= maxWhosPerAgent ? w.whos.slice(1) : w.whos
    w.whos = [...kept, fresh]
    return fresh
  }

  // --- seen table ---
  // has() is asked just before insert() with the same id: its hash is kept for insert.
  let lastId = ''
  let lastHash = 0
  const has = (id: string): boolean => {
    const h = hashId(id)
    lastId = id
    lastHash = h
    for (let i = h & tableMask; table[i] !== 0; i = (i + 1) & tableMask) {
      const slot = (table[i] as number) - 1
      if (s.hash[slot] === h && s.ids[slot] === id) return true
    }
    return false
  }
  const tableInsert = (slot: number) => {
    let i = (s.hash[slot] as number) & tableMask
    while (table[i] !== 0) i = (i + 1) & tableMask
    table[i] = slot + 1
  }
  const tableDelete = (slot: number) => {
    let i = (s.hash[slot] as number) & tableMask
    while (table[i] !== slot + 1) i = (i + 1) & tableMask
    // Backward-shift deletion keeps every probe run unbroken.
    for (let j = (i + 1) & tableMask; table[j] !== 0; j = (j + 1) & tableMask) {
      const home = (s.hash[(table[j] as number) - 1] as number) & tableMask
      if (((j - home) & tableMask) >= ((j - i) & tableMask)) {
        table[i] = table[j] as number
        i = j
      }
    }
    table[i] = 0
  }
  const tableGrow = () => {
    table = new Int32Array(table.length * 2)
    tableMask = table.length - 1
    for (let slot = 0; slot < used; slot++) if (s.windows[slot] !== null) tableInsert(slot)
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
    s.ids.push('')
    s.outputs.push('')
    s.whos.push(null)
    s.details.push(null)
    s.windows.push(null)
    return used++
  }

  const insert = (w: AgentWindow, e: NewEntry): number => {
    const slot = allocate()
    s.ids[slot] = e.id
    s.outputs[slot] = e.output
    s.whos[slot] = e.who
    s.details[slot] = e.detail
    s.windows[slot] = w
    s.time[slot] = e.time
    s.expiry[slot] = e.expiry
    s.seq[slot] = e.seq
    s.lag[slot] = e.lag
    s.mask[slot] = e.mask
    s.hash[slot] = e.id === lastId ? lastHash : hashId(e.id)
    s.next[slot] = -1
    if (e.edge) {
      s.edge[slot] = 1
      s.prev[slot] = w.edgeTail
      if (w.edgeTail === -1) w.edgeHead = slot
      else s.next[w.edgeTail] = slot
      w.edgeTail = slot
    } else {
      s.edge[slot] = 0
      s.prev[slot] = w.coreTail
      if (w.coreTail === -1) w.coreHead = slot
      else s.next[w.coreTail] = slot
      w.coreTail = slot
    }
    if (w.edges + w.cores === 0) agents.set(w.key, w)
    if (e.edge) w.edges++
    else w.cores++
    count++
    bytes += entryBytes(e.id, e.output)
    if (4 * count > 3 * table.length) tableGrow()
    else tableInsert(slot)
    heapKey[heapSize] = e.expiry
    heap[heapSize] = slot
    heapSize++
    siftUp(heapSize - 1)
    if (track) {
      removed.delete(e.id)
      added.set(e.id, slot)
    }
    return slot
  }

  const remove = (slot: number) => {
    const w = s.windows[slot] as AgentWindow
    const id = s.ids[slot] as string
    bytes -= entryBytes(id, s.outputs[slot] as string)
    count--
    tableDelete(slot)
    heapRemove(s.heapPos[slot] as number)
    if (track) {
      if (added.get(id) === slot) added.delete(id)
      else removed.add(id)
    }
    const prev = s.prev[slot] as number
    const next = s.next[slot] as number
    if (prev !== -1) s.next[prev] = next
    if (next !== -1) s.prev[next] = prev
    if (s.edge[slot] === 1) {
      if (w.edgeHead === slot) w.edgeHead = next
      if (w.edgeTail === slot) w.edgeTail = prev
      w.edges--
    } else {
      if (w.coreHead === slot) w.coreHead = next
      if (w.coreTail === slot) w.coreTail = prev
      w.cores--
    }
    if (w.edges + w.cores === 0) agents.delete(w.key)
    s.ids[slot] = ''
    s.outputs[slot] = ''
    s.whos[slot] = null
    s.details[slot] = null
    s.windows[slot] = null
    s.next[slot] = freeHead
    freeHead = slot
  }

  const before = (a: number, b: number) =>
    (s.expiry[a] as number) < (s.expiry[b] as number) ||
    (s.expiry[a] === s.expiry[b] && (s.seq[a] as number) < (s.seq[b] as number))

  const settle = (slot: number) => {
    const w = s.windows[slot] as AgentWindow
    const isEdge = s.edge[slot] === 1
    if ((isEdge ? w.edges : w.cores) > limits.maxPerAgentSide) {
      let oldest = -1
      for (let x = isEdge ? w.edgeHead : w.coreHead; x !== -1; x = s.next[x] as number) {
        if (x !== slot && (oldest === -1 || before(x, oldest))) oldest = x
      }
      if (oldest !== -1) remove(oldest)
      overflow.agent_cap++
    }
    while (bytes > limits.memoryBudgetBytes && heapSize > 0) {
      remove(heap[0] as number)
      overflow.memory_budget++
    }
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
    for (let slot = 0; slot < used; slot++) if (s.windows[slot] !== null) slots.push(slot)
    return slots.sort((a, b) => (s.seq[a] as number) - (s.seq[b] as number))
  }

  return {
    slots: s,
    agents,
    window,
    who,
    has,
    insert,
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
