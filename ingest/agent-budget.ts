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
// - an entry is one owner's (ownerOf below): an agent, and under a host agent or an alert naming no one,
//   one container of one host. An owner has its own entries for at most `rulesPerAgent` rules a minute,
//   and its further rules share ONE catch-all entry of its own ("other rules"; its summary lists up to
//   `otherNames` of their names and folded counts). In the catch-all too, the first alert of each rule,
//   and one outranking what was kept of its rule, is kept, for `catchAllRules` rule names an owner (more
//   than a Falco rule set makes one workload trigger) and `maxKeys` in all catch-alls together a minute.
//   No entry is shared between owners;
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
  /** Rule names a catch-all keeps the first alert of (past them its rules only fold). */
  catchAllRules: number
  /** Rule names (with their counts) a catch-all summary lists. */
  otherNames: number
  /** Characters of the sample output a summary carries. */
  sampleChars: number
}

export const defaultAgentBudget: Omit<AgentBudgetConfig, 'perMinute'> = {
  maxKeys: 10_000,
  rulesPerAgent: 64,
  catchAllRules: 256,
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
  /** The catch-all's rules: per rule, alerts folded and the rank of the highest kept; undefined for an exact entry. */
  others: Map<string, RuleSeen> | undefined
  /** Alerts the catch-all folded of rules past the minute's bound on names (not in `others`). */
  unnamedFolded: number
}

/** One rule in a catch-all: alerts folded, and the rank of the highest priority kept (lower is higher). */
type RuleSeen = { folded: number; keptRank: number }

/** An owner's rules of the current minute. */
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
    unnamedFolded: 0,
  })

  /** Rule names held by every catch-all of the minute, bounded by maxKeys. */
  let catchAllNames = 0

  /** The entry of (owner, rule), or undefined when the table is full: the alert is then kept. */
  const entryFor = (owner: string, rule: string): Entry | undefined => {
    const key = `${owner}\u0000${rule}`
    const entry = entries.get(key)
    if (entry !== undefined) return entry
    let own = agents.get(owner)
    if (own !== undefined && own.rules >= config.rulesPerAgent) {
      // Past its cap: the owner's own catch-all (at most one an owner, and owners are bounded below).
      if (own.other === undefined) {
        own.other = newEntry(true)
        catchAlls++
      }
      return own.other
    }
    if (entries.size >= config.maxKeys) return undefined
    if (own === undefined) {
      own = { rules: 0, other: undefined }
      agents.set(owner, own)
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
    catchAllNames = 0
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
      const entry = entryFor(ownerOf(event), edge.rule)
      if (entry === undefined) {
        tableFull++
        kept?.push(event)
        continue
      }
      const rank = rankOf.get(edge.priority) ?? noRank
      // In a catch-all the priority is judged per rule, and a rule's first alert there is kept.
      const seen = entry.others === undefined ? undefined : ruleIn(entry.others, edge.rule, rank)
      // Within the budget, or worse than anything kept yet for the entry (or the catch-all's rule): kept.
      if (seen === firstOfRule || entry.kept < config.perMinute || rank < (seen ?? entry).keptRank) {
        entry.kept++
        if (rank < entry.keptRank) entry.keptRank = rank
        if (seen !== undefined && seen !== firstOfRule && rank < seen.keptRank) seen.keptRank = rank
        kept?.push(event)
        continue
      }
      if (entry.others !== undefined) {
        if (seen === undefined) entry.unnamedFolded++
        else (seen as RuleSeen).folded++
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

  /**
   * A catch-all's record of `rule`: `firstOfRule` when the rule is new to it (noted with `rank` kept, while
   * the minute's names last), undefined when the names are spent and the rule is not among them.
   */
  const ruleIn = (others: Map<string, RuleSeen>, rule: string, rank: number): RuleSeen | undefined => {
    const seen = others.get(rule)
    if (seen !== undefined || others.size >= config.catchAllRules || catchAllNames >= config.maxKeys)
      return seen
    others.set(rule, { folded: 0, keptRank: rank })
    catchAllNames++
    return firstOfRule
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

/** What ruleIn() answers for a rule new to a catch-all: its first alert there is kept. */
const firstOfRule: RuleSeen = Object.freeze({ folded: 0, keptRank: -1 })

/**
 * Whose budget an alert spends. An agent's, but a host agent is every container of its host, and an alert
 * naming no one is an agent of its own (its event id): there the container (and for the latter the host)
 * is the owner, so that one container cannot spend another's budget, and alerts naming no one cannot each
 * open an entry.
 */
function ownerOf(event: NormalizedEvent): string {
  const { agent, identity } = event
  if (agent.resolved_by === 'host') return `${agent.id}\u0000${identity.container_id ?? ''}`
  if (agent.resolved_by === 'unresolved')
    return `unresolved\u0000${event.edge?.hostname ?? ''}\u0000${identity.container_id ?? ''}`
  return agent.id
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
    const folded = [...entry.others].filter(([, seen]) => seen.folded > 0)
    const listed = folded
      .slice(0, config.otherNames)
      .map(([rule, seen]) => [rule.slice(0, ruleNameChars), seen.folded] as const)
    const unlisted = folded.length - listed.length
    const parts = listed.map(([rule, n]) => `"${rule}" ${n}`)
    if (unlisted > 0) parts.push(`${unlisted} more rules`)
    if (entry.unnamedFolded > 0)
      parts.push(`${entry.unnamedFolded} alerts of rules past its ${config.catchAllRules} names`)
    what = `other rules (past its cap of ${config.rulesPerAgent} rules a minute; alerts folded: ${parts.join(', ')})`
    outputFields['nerve.folded_other_rules'] = folded.length
    if (entry.unnamedFolded > 0) outputFields['nerve.folded_unnamed_alerts'] = entry.unnamedFolded
    outputFields['nerve.folded_rules'] = Object.fromEntries(listed)
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
  const id = `folded-${contentHash([top.agent.id, top.rule, minute, entry.folded, entry.firstTime, entry.lastTime, entry.others?.size ?? 0])}`
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
    // The summary as a Falco alert would carry it: its fields, dated, without nerve's own flag.
    raw: { time: lastTime, ...alertOf(fields) },
  }
}

const alertOf = ({ internal: _, ...alert }: EdgeFields) => alert
