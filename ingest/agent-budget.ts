// The per-agent edge budget: per agent, Falco rule and minute of nerve's receive time (never event time,
// which the agent writes), the first `perMinute` alerts go on the bus and the rest are folded. A
// `cat /etc/shadow-$i` loop makes a distinct alert each time, so nothing downstream folds it, and 20,000 of
// them grew the data dir by 69 MiB (docs/threat-model.md). Refusing or dropping is worse: Falcosidekick
// posts the alerts of every pod of a node together and never retries, and a dropped alert is unseen.
//
// Folded alerts are accounted for: when a minute closes, each (agent, rule) that folded any becomes ONE
// summary edge event (summaryEvent below) with the same agent, identity and rule, source `nerve`, tags
// `nerve` and `folded`, the count, the first and last folded event times, and the last folded alert's
// output (truncated) as a sample. Its time is the last folded event time, so together with the kept
// alerts (the first of each minute) its window covers the folded ones' for every rule that names the rule.
//
// State is bounded: at most `maxKeys` (agent, rule) entries per minute. Past that, a new key shares one of
// `overflowBuckets` entries chosen by a hash of the key, and with it that entry's budget: at the bound
// keys fold more eagerly, never less, so filling the table cannot exempt anyone. A shared entry's summary
// names its last folded alert's agent and rule and says it counts other keys too. Pure: the caller passes
// the receive time.
import type { EdgeFields, NormalizedEvent } from '../schemas/types.ts'
import { contentHash } from './content-hash.ts'

export type AgentBudgetConfig = {
  /** Alerts kept per agent, rule and minute; 0: off. */
  perMinute: number
  /** Exact (agent, rule) entries per minute. */
  maxKeys: number
  /** Shared entries once maxKeys are taken. */
  overflowBuckets: number
  /** Characters of the sample output a summary carries. */
  sampleChars: number
}

export const defaultAgentBudget: Omit<AgentBudgetConfig, 'perMinute'> = {
  maxKeys: 10_000,
  overflowBuckets: 256,
  sampleChars: 256,
}

export const minuteMs = 60_000

/** The tags a summary carries: how the correlator tells it from a Falco alert of the same rule. */
export const foldedTags: readonly string[] = ['nerve', 'folded']

/** One (agent, rule) of the current minute, or a shared overflow entry. */
type Entry = {
  kept: number
  folded: number
  firstTime: number
  lastTime: number
  /** The last folded alert: its agent, identity and fields name the summary; no reference to its text. */
  last: Sample | undefined
  shared: boolean
}

type Sample = {
  agent: NormalizedEvent['agent']
  identity: NormalizedEvent['identity']
  via: NormalizedEvent['via']
  rule: string
  priority: EdgeFields['priority']
  hostname: string
  output: string
}

export type FoldedKey = { agent: string; rule: string; folded: number }

export type ClosedMinute = {
  /** Receive-time start of the minute, epoch ms. */
  minute: number
  summaries: NormalizedEvent[]
  /** The (agent, rule) pairs that folded, most folded first. */
  keys: FoldedKey[]
  folded: number
}

export type AgentBudget = {
  /**
   * The events of one request, received at `now`: kept ones in order; folded ones leave. Closes the
   * previous minute first when `now` is in a later one (its summaries are then in closed()).
   */
  admit(events: NormalizedEvent[], now: number): { kept: NormalizedEvent[]; folded: number }
  /** Closes the minute when `now` is past it, or at once with `force` (a clean stop). */
  close(now: number, force?: boolean): ClosedMinute | undefined
  /** Entries held (exact and shared), for tests and the bound. */
  size(): number
}

export function createAgentBudget(config: AgentBudgetConfig): AgentBudget {
  let minute = Number.NaN
  let entries = new Map<string, Entry>()
  let buckets: (Entry | undefined)[] = []
  let pendingClose: ClosedMinute | undefined

  const newEntry = (shared: boolean): Entry => ({
    kept: 0,
    folded: 0,
    firstTime: 0,
    lastTime: 0,
    last: undefined,
    shared,
  })

  const entryFor = (key: string): Entry => {
    const entry = entries.get(key)
    if (entry !== undefined) return entry
    if (entries.size < config.maxKeys) {
      const created = newEntry(false)
      entries.set(key, created)
      return created
    }
    const index = bucketOf(key, config.overflowBuckets)
    let bucket = buckets[index]
    if (bucket === undefined) {
      bucket = newEntry(true)
      buckets[index] = bucket
    }
    return bucket
  }

  const finish = (receivedAt: number): ClosedMinute | undefined => {
    let folded = 0
    const summaries: NormalizedEvent[] = []
    const keys: FoldedKey[] = []
    const all = [...entries.values(), ...buckets.filter((b): b is Entry => b !== undefined)]
    for (const entry of all) {
      if (entry.folded === 0 || entry.last === undefined) continue
      folded += entry.folded
      summaries.push(summaryEvent(entry, minute, receivedAt, config))
      keys.push({ agent: entry.last.agent.id, rule: entry.last.rule, folded: entry.folded })
    }
    entries = new Map()
    buckets = []
    if (folded === 0) return undefined
    keys.sort((a, b) => b.folded - a.folded)
    return { minute, summaries, keys, folded }
  }

  const roll = (now: number) => {
    const current = now - (now % minuteMs)
    if (current === minute) return
    const closed = Number.isNaN(minute) ? undefined : finish(now)
    if (closed) pendingClose = pendingClose ? merge(pendingClose, closed) : closed
    minute = current
  }

  const admit = (events: NormalizedEvent[], now: number) => {
    if (config.perMinute === 0) return { kept: events, folded: 0 }
    roll(now)
    let kept: NormalizedEvent[] | undefined
    let folded = 0
    for (let i = 0; i < events.length; i++) {
      const event = events[i] as NormalizedEvent
      const edge = event.edge
      // CloudTrail (core events, the Falco door's too) is never folded; nor are Falco's own messages.
      if (edge === undefined || edge.internal) {
        kept?.push(event)
        continue
      }
      const entry = entryFor(`${event.agent.id}\u0000${edge.rule}`)
      if (entry.kept < config.perMinute) {
        entry.kept++
        kept?.push(event)
        continue
      }
      if (kept === undefined) kept = events.slice(0, i)
      if (entry.folded === 0 || event.time < entry.firstTime) entry.firstTime = event.time
      if (entry.folded === 0 || event.time > entry.lastTime) entry.lastTime = event.time
      entry.folded++
      entry.last = sampleOf(event, edge, config.sampleChars)
      folded++
    }
    return { kept: kept ?? events, folded }
  }

  const close = (now: number, force = false): ClosedMinute | undefined => {
    roll(now)
    let closed = pendingClose
    pendingClose = undefined
    if (force) {
      const rest = finish(now)
      if (rest) closed = closed ? merge(closed, rest) : rest
    }
    return closed
  }

  return { admit, close, size: () => entries.size + buckets.filter((b) => b !== undefined).length }
}

function merge(a: ClosedMinute, b: ClosedMinute): ClosedMinute {
  return {
    minute: b.minute,
    summaries: [...a.summaries, ...b.summaries],
    keys: [...a.keys, ...b.keys].sort((x, y) => y.folded - x.folded),
    folded: a.folded + b.folded,
  }
}

/** FNV-1a over the key's UTF-16 units: only keys past the table's bound are hashed. */
function bucketOf(key: string, buckets: number): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  return (h >>> 0) % buckets
}

/** What a summary keeps of the last folded alert: its output cut to `chars`, copied off the alert's text. */
function sampleOf(event: NormalizedEvent, edge: EdgeFields, chars: number): Sample {
  const output =
    edge.output.length <= chars ? edge.output : `${Buffer.from(edge.output.slice(0, chars)).toString()}…`
  return {
    agent: event.agent,
    identity: event.identity,
    via: event.via,
    rule: edge.rule,
    priority: edge.priority,
    hostname: edge.hostname,
    output,
  }
}

/** The summary of one entry's folds: an edge event of the last folded alert's agent, identity and rule. */
function summaryEvent(
  entry: Entry,
  minute: number,
  receivedAt: number,
  config: AgentBudgetConfig,
): NormalizedEvent {
  const last = entry.last as Sample
  const first = new Date(entry.firstTime).toISOString()
  const lastTime = new Date(entry.lastTime).toISOString()
  const shared = entry.shared
    ? ' (counting alerts of other agents or rules too: the fold table was full)'
    : ''
  const output = `Folded ${entry.folded} alerts of "${last.rule}" of agent ${last.agent.id} over the budget of ${config.perMinute} a minute${shared}, event times ${first} to ${lastTime}; the last: ${last.output}`
  const outputFields: Record<string, unknown> = {
    'nerve.folded_count': entry.folded,
    'nerve.folded_first_time': first,
    'nerve.folded_last_time': lastTime,
    'nerve.budget_minute': new Date(minute).toISOString(),
    'nerve.budget_per_minute': config.perMinute,
  }
  if (entry.shared) outputFields['nerve.folded_shared'] = true
  const fields: EdgeFields = {
    rule: last.rule,
    priority: last.priority,
    source: 'nerve',
    hostname: last.hostname,
    tags: [...foldedTags],
    output,
    output_fields: outputFields,
    internal: false,
  }
  const id = `folded-${contentHash([last.agent.id, last.rule, minute, entry.folded, entry.firstTime, entry.lastTime])}`
  return {
    id,
    side: 'edge',
    time: entry.lastTime,
    time_ns: 0,
    time_original: lastTime,
    received_at: receivedAt,
    via: last.via,
    agent: last.agent,
    identity: last.identity,
    edge: fields,
    raw: {
      time: lastTime,
      rule: last.rule,
      priority: last.priority,
      source: 'nerve',
      hostname: last.hostname,
      tags: [...foldedTags],
      output,
      output_fields: outputFields,
    },
  }
}
