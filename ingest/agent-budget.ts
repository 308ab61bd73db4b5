// The per-agent edge budget: per agent, Falco rule and minute of nerve's receive time (never event time,
// which the agent writes), the first `perMinute` alerts go on the bus and the rest are folded. A
// `cat /etc/shadow-$i` loop makes a distinct alert each time, so nothing downstream folds it, and 20,000 of
// them grew the data dir by 69 MiB (docs/threat-model.md). Refusing or dropping is worse: Falcosidekick
// posts the alerts of every pod of a node together and never retries, and a dropped alert is unseen.
//
// Folded alerts are accounted for: when a minute closes, each entry that folded any becomes ONE summary
// edge event (summaryEvent below) with the agent, identity and rule of its highest-priority folded alert,
// source `nerve`, tags `nerve` and `folded`, the count, the first and last folded event times, and that
// alert's priority, time and output (truncated) as a sample. Its time is the last folded event time, so
// together with the kept alerts its window covers the folded ones' for every rule that names the rule.
//
// Nothing the agent sends can hide its own worse alert or fold anyone else's:
// - an alert of a higher priority than every alert kept so far for its entry this minute is kept, not
//   folded (at most one per priority level, entry and minute): a flood of Notice cannot bury a Critical;
// - an entry is one agent's: an agent has its own entries for at most `rulesPerAgent` rules a minute, and
//   its further rules share ONE catch-all entry of its own ("other rules"; its summary lists up to
//   `otherNames` of their names and counts). No entry is shared between agents;
// - the table is bounded (`maxKeys` entries a minute); a key that finds it full is kept, not folded, and
//   counted (`tableFull`): past the bound nerve folds less, never hides. Filling it takes
//   maxKeys / rulesPerAgent identities. Pure: the caller passes the receive time.
import type { EdgeFields, NormalizedEvent } from '../schemas/types.ts'
import { falcoPriorities } from '../schemas/types.ts'
import { contentHash } from './content-hash.ts'

export type AgentBudgetConfig = {
  /** Alerts kept per agent, rule and minute; 0: off. */
  perMinute: number
  /** Exact (agent, rule) entries per minute; keys past it are kept, not folded. */
  maxKeys: number
  /** Rules an agent has entries of its own for in a minute; its further rules share its catch-all. */
  rulesPerAgent: number
  /** Rule names (with their counts) a catch-all summary lists. */
  otherNames: number
  /** Characters of the sample output a summary carries. */
  sampleChars: number
}

export const defaultAgentBudget: Omit<AgentBudgetConfig, 'perMinute'> = {
  maxKeys: 10_000,
  rulesPerAgent: 64,
  otherNames: 16,
  sampleChars: 256,
}

export const minuteMs = 60_000

/** The tags a summary carries: how the correlator tells it from a Falco alert of the same rule. */
export const foldedTags: readonly string[] = ['nerve', 'folded']

/** Falco priorities by rank: 0 is emergency, the highest. */
const rankOf = new Map<string, number>(falcoPriorities.map((p, i) => [p, i]))
const noRank = falcoPriorities.length

/** One (agent, rule) of the current minute, or an agent's catch-all of its rules past its cap. */
type Entry = {
  kept: number
  /** Rank of the highest priority kept this minute (lower is higher; noRank before any). */
  keptRank: number
  folded: number
  firstTime: number
  lastTime: number
  /** The highest-priority folded alert (the first of that priority): it names the summary. */
  top: Sample | undefined
  topRank: number
  /** The catch-all's rule names and counts (at most otherNames); undefined for an exact entry. */
  others: Map<string, number> | undefined
  otherRules: number
}

/** An agent's rules of the current minute. */
type AgentRules = { rules: number; other: Entry | undefined }

type Sample = {
  agent: NormalizedEvent['agent']
  identity: NormalizedEvent['identity']
  via: NormalizedEvent['via']
  rule: string
  priority: EdgeFields['priority']
  hostname: string
  output: string
  time: number
}

export type FoldedKey = { agent: string; rule: string; folded: number }

export type ClosedMinute = {
  /** Receive-time start of the minute, epoch ms. */
  minute: number
  summaries: NormalizedEvent[]
  /** The (agent, rule) pairs that folded, most folded first (rule `other rules` for a catch-all). */
  keys: FoldedKey[]
  folded: number
}

export type AgentBudget = {
  /**
   * The events of one request, received at `now`: kept ones in order; folded ones leave. `tableFull`
   * counts alerts kept only because the table was full. Closes the previous minute first when `now` is
   * in a later one (its summaries are then in closed()).
   */
  admit(
    events: NormalizedEvent[],
    now: number,
  ): { kept: NormalizedEvent[]; folded: number; tableFull: number }
  /** Closes the minute when `now` is past it, or at once with `force` (a clean stop). */
  close(now: number, force?: boolean): ClosedMinute | undefined
  /** Entries held (exact and catch-all), for tests and the bound. */
  size(): number
}

/** The rule a catch-all entry names in the warning. */
export const otherRulesName = 'other rules'

export function createAgentBudget(config: AgentBudgetConfig): AgentBudget {
  let minute = Number.NaN
  let entries = new Map<string, Entry>()
  let agents = new Map<string, AgentRules>()
  let catchAlls = 0
  let pendingClose: ClosedMinute | undefined

  const newEntry = (catchAll: boolean): Entry => ({
    kept: 0,
    keptRank: noRank,
    folded: 0,
    firstTime: 0,
    lastTime: 0,
    top: undefined,
    topRank: noRank,
    others: catchAll ? new Map() : undefined,
    otherRules: 0,
  })

  /** The entry of (agent, rule), or undefined when the table is full: the alert is then kept. */
  const entryFor = (agentId: string, rule: string): Entry | undefined => {
    const key = `${agentId}\u0000${rule}`
    const entry = entries.get(key)
    if (entry !== undefined) return entry
    let own = agents.get(agentId)
    if (own !== undefined && own.rules >= config.rulesPerAgent) {
      // Past its cap: the agent's own catch-all (at most one an agent, and agents are bounded below).
      if (own.other === undefined) {
        own.other = newEntry(true)
        catchAlls++
      }
      const other = own.other
      const seen = other.others as Map<string, number>
      const count = seen.get(rule)
      if (count !== undefined) seen.set(rule, count + 1)
      else {
        other.otherRules++
        if (seen.size < config.otherNames) seen.set(rule, 1)
      }
      return other
    }
    if (entries.size >= config.maxKeys) return undefined
    if (own === undefined) {
      own = { rules: 0, other: undefined }
      agents.set(agentId, own)
    }
    own.rules++
    const created = newEntry(false)
    entries.set(key, created)
    return created
  }

  const finish = (receivedAt: number): ClosedMinute | undefined => {
    let folded = 0
    const summaries: NormalizedEvent[] = []
    const keys: FoldedKey[] = []
    const add = (entry: Entry) => {
      if (entry.folded === 0 || entry.top === undefined) return
      folded += entry.folded
      summaries.push(summaryEvent(entry, minute, receivedAt, config))
      const rule = entry.others ? otherRulesName : entry.top.rule
      keys.push({ agent: entry.top.agent.id, rule, folded: entry.folded })
    }
    for (const entry of entries.values()) add(entry)
    for (const own of agents.values()) if (own.other) add(own.other)
    entries = new Map()
    agents = new Map()
    catchAlls = 0
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
    if (config.perMinute === 0) return { kept: events, folded: 0, tableFull: 0 }
    roll(now)
    let kept: NormalizedEvent[] | undefined
    let folded = 0
    let tableFull = 0
    for (let i = 0; i < events.length; i++) {
      const event = events[i] as NormalizedEvent
      const edge = event.edge
      // CloudTrail (core events, the Falco door's too) is never folded. Falco's own messages are: an
      // agent can name its alerts "Test rule" or send them with source internal.
      if (edge === undefined) {
        kept?.push(event)
        continue
      }
      const entry = entryFor(event.agent.id, edge.rule)
      if (entry === undefined) {
        tableFull++
        kept?.push(event)
        continue
      }
      const rank = rankOf.get(edge.priority) ?? noRank
      // Within the budget, or worse than anything kept yet for the entry this minute: kept.
      if (entry.kept < config.perMinute || rank < entry.keptRank) {
        entry.kept++
        if (rank < entry.keptRank) entry.keptRank = rank
        kept?.push(event)
        continue
      }
      if (kept === undefined) kept = events.slice(0, i)
      if (entry.folded === 0 || event.time < entry.firstTime) entry.firstTime = event.time
      if (entry.folded === 0 || event.time > entry.lastTime) entry.lastTime = event.time
      entry.folded++
      // A new sample only when the priority rises: at most one per level, entry and minute.
      if (rank < entry.topRank || entry.top === undefined) {
        entry.top = sampleOf(event, edge, config.sampleChars)
        entry.topRank = rank
      }
      folded++
    }
    return { kept: kept ?? events, folded, tableFull }
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

  return { admit, close, size: () => entries.size + catchAlls }
}

function merge(a: ClosedMinute, b: ClosedMinute): ClosedMinute {
  return {
    minute: b.minute,
    summaries: [...a.summaries, ...b.summaries],
    keys: [...a.keys, ...b.keys].sort((x, y) => y.folded - x.folded),
    folded: a.folded + b.folded,
  }
}

/** What a summary keeps of its top folded alert: its output cut to `chars`, copied off the alert's text. */
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
    time: event.time,
  }
}

/** Rule names are the agent's text: the catch-all's list quotes each cut to this many characters. */
const ruleNameChars = 120

/** The summary of one entry's folds: an edge event of its top folded alert's agent, identity and rule. */
function summaryEvent(
  entry: Entry,
  minute: number,
  receivedAt: number,
  config: AgentBudgetConfig,
): NormalizedEvent {
  const top = entry.top as Sample
  const first = new Date(entry.firstTime).toISOString()
  const lastTime = new Date(entry.lastTime).toISOString()
  const topTime = new Date(top.time).toISOString()
  const outputFields: Record<string, unknown> = {
    'nerve.folded_count': entry.folded,
    'nerve.folded_first_time': first,
    'nerve.folded_last_time': lastTime,
    'nerve.folded_top_priority': top.priority,
    'nerve.folded_top_time': topTime,
    'nerve.budget_minute': new Date(minute).toISOString(),
    'nerve.budget_per_minute': config.perMinute,
  }
  let what = `"${top.rule}"`
  if (entry.others !== undefined) {
    const listed = [...entry.others].map(([rule, n]) => `"${rule.slice(0, ruleNameChars)}" ${n}`)
    const unlisted = entry.otherRules - entry.others.size
    what = `other rules (${entry.otherRules} past its cap of ${config.rulesPerAgent} rules a minute, alerts counted: ${listed.join(', ')}${unlisted > 0 ? `, and ${unlisted} more rules` : ''})`
    outputFields['nerve.folded_other_rules'] = entry.otherRules
    outputFields['nerve.folded_rules'] = Object.fromEntries(
      [...entry.others].map(([rule, n]) => [rule.slice(0, ruleNameChars), n]),
    )
  }
  const output = `Folded ${entry.folded} alerts of ${what} of agent ${top.agent.id} over the budget of ${config.perMinute} a minute, event times ${first} to ${lastTime}; the highest priority folded, ${top.priority} at ${topTime}: ${top.output}`
  const fields: EdgeFields = {
    rule: top.rule,
    priority: top.priority,
    source: 'nerve',
    hostname: top.hostname,
    tags: [...foldedTags],
    output,
    output_fields: outputFields,
    internal: false,
  }
  const id = `folded-${contentHash([top.agent.id, top.rule, minute, entry.folded, entry.firstTime, entry.lastTime, entry.otherRules])}`
  return {
    id,
    side: 'edge',
    time: entry.lastTime,
    time_ns: 0,
    time_original: lastTime,
    received_at: receivedAt,
    via: top.via,
    agent: top.agent,
    identity: top.identity,
    edge: fields,
    raw: {
      time: lastTime,
      rule: top.rule,
      priority: top.priority,
      source: 'nerve',
      hostname: top.hostname,
      tags: [...foldedTags],
      output,
      output_fields: outputFields,
    },
  }
}
