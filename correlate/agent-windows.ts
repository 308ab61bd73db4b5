// Per-agent buffers of recent edge and core events, bounded twice: a cap per agent and side, and a global
// memory budget. Both shed the entry that would expire first, and count it: never silent. Entries are
// compact: the fields matching and the correlation record need, with repeated values shared (interned).
import type { FalcoPriority, IdentityFields, ResolvedBy } from '../schemas/types.ts'
import { createExpiryQueue } from './expiry-queue.ts'

/** Who an event names; interned per agent (most events of one agent carry the same identity). */
export type Who = { resolved_by: ResolvedBy; identity: IdentityFields }

export type EdgeDetail = {
  side: 'edge'
  rule: string
  priority: FalcoPriority
  source: string
  hostname: string
  tags: string[]
}

export type CoreDetail = {
  side: 'core'
  action: string
  principal: string
  read_only?: boolean
  error_code?: string
  source_ip?: string
  region?: string
  account_id?: string
}

export class Entry {
  constructor(
    readonly id: string,
    readonly time: number,
    /** Rules this event passed and was on time for. */
    readonly mask: number,
    /** Evicted once stream time > expiry (S1, with the largest B+A+G of its rules). */
    readonly expiry: number,
    readonly seq: number,
    /** Stream time − event time when it arrived, ms (0 when ahead). */
    readonly lag: number,
    readonly who: Who,
    readonly detail: EdgeDetail | CoreDetail,
    /** Falco output for edge entries, '' for core entries. */
    public output: string,
    readonly window: AgentWindow,
    public alive = true,
  ) {}
}

export type AgentWindow = {
  key: string
  edges: Entry[]
  cores: Entry[]
  live: number
  whos: Who[]
}

export type OverflowReason = 'agent_cap' | 'memory_budget'

export type AgentWindows = {
  agents: Map<string, AgentWindow>
  /** Ids of buffered events: first delivery wins while an event is retained. */
  seen: Map<string, Entry>
  window(key: string): AgentWindow
  /** Interns a Who for an agent. */
  who(window: AgentWindow, resolvedBy: ResolvedBy, identity: IdentityFields): Who
  add(entry: Entry): void
  evictExpired(streamTime: number): number
  buffered(): number
  bytes(): number
  overflow: Record<OverflowReason, number>
  /** Entries added and ids removed since the last call (only with trackChanges), for incremental checkpoints. */
  takeChanges(): { added: Entry[]; removed: string[] }
}

const maxWhosPerAgent = 16

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

/** Estimated heap bytes of one entry (object, boxed numbers, list/queue/map slots, agent share, its own strings), calibrated against the heap deltas of bench/correlator.bench.ts. */
export const entryBytes = (e: Entry) => 256 + e.id.length + e.output.length

export function createAgentWindows(limits: {
  maxPerAgentSide: number
  memoryBudgetBytes: number
  trackChanges?: boolean
}): AgentWindows {
  const agents = new Map<string, AgentWindow>()
  const seen = new Map<string, Entry>()
  const heap = createExpiryQueue<Entry>()
  const overflow: Record<OverflowReason, number> = { agent_cap: 0, memory_budget: 0 }
  let count = 0
  let bytes = 0
  const track = limits.trackChanges ?? false
  let added = new Map<string, Entry>()
  let removed = new Set<string>()

  const before = (a: Entry, b: Entry) => a.expiry < b.expiry || (a.expiry === b.expiry && a.seq < b.seq)

  const window = (key: string): AgentWindow => {
    let w = agents.get(key)
    if (!w) {
      w = { key, edges: [], cores: [], live: 0, whos: [] }
      agents.set(key, w)
    }
    return w
  }

  const who = (w: AgentWindow, resolvedBy: ResolvedBy, identity: IdentityFields): Who => {
    for (const known of w.whos) {
      if (known.resolved_by === resolvedBy && sameIdentity(known.identity, identity)) return known
    }
    const fresh = { resolved_by: resolvedBy, identity }
    if (w.whos.length >= maxWhosPerAgent) w.whos.shift()
    w.whos.push(fresh)
    return fresh
  }

  /** Marks an entry gone; the list drops dead entries once they outnumber live ones. */
  const remove = (e: Entry) => {
    if (!e.alive) return
    bytes -= entryBytes(e)
    e.alive = false
    e.output = ''
    count--
    seen.delete(e.id)
    if (track) {
      if (added.get(e.id) === e) added.delete(e.id)
      else removed.add(e.id)
    }
    const w = e.window
    w.live--
    const list = e.detail.side === 'edge' ? w.edges : w.cores
    if (list.length > 8 && list.length > 2 * w.live) {
      const kept = list.filter((x) => x.alive)
      if (e.detail.side === 'edge') w.edges = kept
      else w.cores = kept
    }
    if (w.live === 0) agents.delete(w.key)
  }

  const liveOf = (list: Entry[]) => {
    let n = 0
    for (const x of list) if (x.alive) n++
    return n
  }

  const shedFromAgent = (list: Entry[]) => {
    let oldest: Entry | undefined
    for (const x of list) if (x.alive && (!oldest || before(x, oldest))) oldest = x
    if (oldest) remove(oldest)
  }

  const add = (e: Entry) => {
    const w = e.window
    const list = e.detail.side === 'edge' ? w.edges : w.cores
    if (list.length >= limits.maxPerAgentSide && liveOf(list) >= limits.maxPerAgentSide) {
      shedFromAgent(list)
      overflow.agent_cap++
    }
    const current = e.detail.side === 'edge' ? w.edges : w.cores
    current.push(e)
    if (!agents.has(w.key)) agents.set(w.key, w)
    w.live++
    count++
    bytes += entryBytes(e)
    seen.set(e.id, e)
    if (track) {
      removed.delete(e.id)
      added.set(e.id, e)
    }
    heap.push(e)
    while (bytes > limits.memoryBudgetBytes && heap.size() > 0) {
      const victim = heap.pop()
      if (victim?.alive) {
        remove(victim)
        overflow.memory_budget++
      }
    }
  }

  const evictExpired = (streamTime: number) => {
    let evicted = 0
    for (let top = heap.peek(); top !== undefined && top.expiry < streamTime; top = heap.peek()) {
      const e = heap.pop() as Entry
      if (e.alive) {
        remove(e)
        evicted++
      }
    }
    return evicted
  }

  return {
    agents,
    seen,
    window,
    who,
    add,
    evictExpired,
    buffered: () => count,
    bytes: () => bytes,
    overflow,
    takeChanges: () => {
      const changes = { added: [...added.values()].filter((e) => e.alive), removed: [...removed] }
      added = new Map()
      removed = new Set()
      return changes
    },
  }
}
