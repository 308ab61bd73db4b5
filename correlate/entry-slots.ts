// The buffered entries' storage: an entry is a slot in parallel arrays (numbers unboxed in typed arrays, no
// object per entry); each agent links its slots per side in arrival order. agent-windows.ts keeps them.
import type { Correlation, IdentityFields, ResolvedBy } from '../schemas/types.ts'
import { idWords, textId, unpackId } from './packed-ids.ts'
import { TextArena } from './text-arena.ts'

/** Who an event names; interned per agent (most events of one agent carry the same identity). */
export type Who = { resolved_by: ResolvedBy; identity: IdentityFields }

/** A Who as a slot holds it: it also leads to the agent's window, so a slot needs no pointer of its own for that. */
export class AgentWho implements Who {
  /** Buffered entries naming it (agent-windows.ts): its identity's bytes count once while any is buffered. */
  entries = 0
  constructor(
    readonly window: AgentWindow,
    readonly resolved_by: ResolvedBy,
    readonly identity: IdentityFields,
  ) {}
}

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
  /** The agent's recent identities, oldest first; most agents have one, kept without an array. */
  whos: AgentWho | AgentWho[] | null = null
  /** Buffered edge entries per detail (for collapsing repeats); null until the first edge entry. */
  edgeKinds: Map<EdgeDetail, number> | null = null
  constructor(readonly key: string) {}
}

/** Marks a lag kept in EntrySlots.lagExact because it is no 32-bit integer. */
export const lagElsewhere = -0x80000000

/** The buffered entries, one slot index each. Typed arrays are replaced when they grow: read them through this object. */
export class EntrySlots {
  time: Float64Array
  /** The latest time of the identical alerts folded into this entry; its own time when none was. */
  last: Float64Array
  /** Identical alerts folded into this entry (besides its own). */
  repeats: Int32Array
  seq: Float64Array
  /** Stream time − event time when it arrived, ms (0 when ahead); lagElsewhere: see lagExact. */
  lag: Int32Array
  /** Rules this event passed and was on time for. */
  mask: Int32Array
  prev: Int32Array
  /** Next slot of the same agent and side; for a free slot, the next free slot. */
  next: Int32Array
  heapPos: Int32Array
  /** Bit 0: 1 for an edge entry, 0 for a core entry; bits 1–2: how its id is kept (packed-ids.ts). */
  flags: Uint8Array
  /** idWords words per slot: the packed id. */
  words: Int32Array
  readonly arena: TextArena
  /** Ids that do not pack, by slot. */
  readonly idText = new Map<number, string>()
  /** Edge outputs the arena refused (not ASCII), by slot. */
  readonly outputText = new Map<number, string>()
  /** Lags that are no 32-bit integer, by slot. */
  readonly lagExact = new Map<number, number>()
  /** null for a free slot. */
  whos: (AgentWho | null)[]
  details: (EdgeDetail | CoreDetail | null)[]

  constructor(public capacity: number) {
    this.time = new Float64Array(capacity)
    this.last = new Float64Array(capacity)
    this.repeats = new Int32Array(capacity)
    this.seq = new Float64Array(capacity)
    this.lag = new Int32Array(capacity)
    this.mask = new Int32Array(capacity)
    this.prev = new Int32Array(capacity)
    this.next = new Int32Array(capacity)
    this.heapPos = new Int32Array(capacity)
    this.flags = new Uint8Array(capacity)
    this.words = new Int32Array(capacity * idWords)
    this.arena = new TextArena(capacity)
    this.whos = new Array(capacity).fill(null)
    this.details = new Array(capacity).fill(null)
  }

  grow(capacity: number): void {
    const copy = <A extends Float64Array | Int32Array | Uint8Array>(old: A, fresh: A): A => {
      fresh.set(old)
      return fresh
    }
    this.time = copy(this.time, new Float64Array(capacity))
    this.last = copy(this.last, new Float64Array(capacity))
    this.repeats = copy(this.repeats, new Int32Array(capacity))
    this.seq = copy(this.seq, new Float64Array(capacity))
    this.lag = copy(this.lag, new Int32Array(capacity))
    this.mask = copy(this.mask, new Int32Array(capacity))
    this.prev = copy(this.prev, new Int32Array(capacity))
    this.next = copy(this.next, new Int32Array(capacity))
    this.heapPos = copy(this.heapPos, new Int32Array(capacity))
    this.flags = copy(this.flags, new Uint8Array(capacity))
    this.words = copy(this.words, new Int32Array(capacity * idWords))
    this.arena.grow(capacity)
    // Arrays of exactly the capacity: push would reserve up to half as much again.
    const whos = new Array<AgentWho | null>(capacity).fill(null)
    const details = new Array<EdgeDetail | CoreDetail | null>(capacity).fill(null)
    for (let i = 0; i < this.capacity; i++) {
      whos[i] = this.whos[i] as AgentWho | null
      details[i] = this.details[i] as EdgeDetail | CoreDetail | null
    }
    this.whos = whos
    this.details = details
    this.capacity = capacity
  }

  isEdge(slot: number): boolean {
    return ((this.flags[slot] as number) & 1) === 1
  }

  id(slot: number): string {
    const kind = (this.flags[slot] as number) >> 1
    return kind === textId ? (this.idText.get(slot) as string) : unpackId(kind, this.words, slot * idWords)
  }

  /** The Falco output of an edge entry, '' for a core entry. */
  output(slot: number): string {
    if (this.arena.has(slot)) return this.arena.get(slot)
    return this.outputText.get(slot) ?? ''
  }

  lagOf(slot: number): number {
    const lag = this.lag[slot] as number
    return lag === lagElsewhere ? (this.lagExact.get(slot) as number) : lag
  }
}
