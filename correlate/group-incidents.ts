// Correlations of one agent that lie within `incident_gap` of each other in event time share an incident
// (GuardDuty attack sequences: first/last seen, count, signals). Assigned in the pure core, in input order,
// so replay and restart give the same incident ids. An incident is forgotten once no future correlation
// can fall within its gap (the caller passes that horizon).
//
// The grouping does not depend on arrival order: an incident is a run of correlations whose times are
// each within the gap of the next (single linkage), so a correlation that falls within the gap of two
// incidents merges them, and the incident's id is derived from its earliest correlation (by time, then
// id). When a newcomer merges incidents or comes before an incident's earliest correlation, the id
// changes: the correlation says which ids its incident replaces (`merged`), so a store can fold them in.
// Once nothing is late, `--order input` and `--order time` end with the same incidents and ids, as long
// as no incident is renamed more than `maxRenames` times (below).
//
// Renames are bounded: a store folds a rename by rewriting every stored correlation of the incident, and
// the watched agent chooses its alert times, so alerts sent each earlier than the last against one
// CloudTrail call (up to one per millisecond of the rule's window) would each rename the incident and
// cost the store the whole incident again: quadratic. After `maxRenames` renames (its own and those of
// the incidents merged into it, added up) an incident keeps its id, and a correlation earlier than its
// earliest one joins it under that id. What that gives up: an incident renamed that often in input order
// ends with a different id than in time order (same incident, same correlations). Replay and restart
// stay deterministic: the count is part of the incident's state and of its checkpoint.
//
// Merges are bounded the same way: a store folds a merge by reading every stored correlation of the
// surviving incident again (its row is rebuilt from them), and the watched agent, whose alert times set
// the stream time of a quiet partition, can alternate a new incident past the gap and a correlation
// bridging it to the last: each merge cost the store writer the whole incident again (1,000 merges from
// 4,000 events: 14 s of the writer's CPU, four times as much per doubling). After `maxMerges` incidents
// merged into it (those merged into them counted too), an incident merges no more: a correlation within
// the gap of it and of another joins the earliest of them, and the other stays an incident of its own.
// Arrival in time order never merges (each correlation is the latest so far), so this gives up only what
// the rename bound does: input order may end with other incidents than time order past the bound.
//
// Bounded per incident: the first `maxPerRule` correlations of each rule are kept, the rest are counted as
// suppressed on the incident and not emitted (Elastic's alert suppression), so 200 alerts × 200 denied
// calls of one agent cannot write 40,000 documents; correlation_count stays the true count. One over the
// bound that scores higher than every one of its rule so far is still emitted (at most one per score
// point), so the revoke decision never misses the incident's strongest evidence, and so is one that merges
// or renames incidents, since only it carries `merged`.
import { incidentId } from './correlation-id.ts'

export type IncidentView = {
  id: string
  /** The earliest evidence: the earliest edge or core event time of its correlations, suppressed ones included. */
  first_seen: number
  /** The latest: the latest correlation time (the later event of each pair). */
  last_seen: number
  /** Every correlation of the incident so far, suppressed ones included. */
  correlation_count: number
  /** Correlations over the per-rule bound, counted but not emitted (absent while none). */
  suppressed_count?: number
  /** Distinct signals so far, sorted: `edge:<Falco rule>` and `core:<service:EventName>`, at most 100. */
  signals: string[]
  /** Incident ids this correlation's incident now replaces (merged in, or renamed by an earlier member). */
  merged?: string[]
}

export type IncidentRecord = Omit<IncidentView, 'merged'> & {
  agent: string
  /** Its earliest correlation, whose id names it (absent in older checkpoints: unknownCorrelation). */
  earliest?: { time: number; correlation: string }
  /** Correlations so far per rule id (absent in checkpoints written before the bound). */
  per_rule?: Record<string, number>
  /** The highest score emitted so far per rule id. */
  best_score?: Record<string, number>
  /** Times it was renamed, merged incidents' included (absent while none, and in earlier checkpoints). */
  renames?: number
  /** Incidents merged into it, theirs included (absent while none, and in earlier checkpoints). */
  merges?: number
}

export type Assigned = IncidentView & {
  /** Over the bound for its rule: counted on the incident, not to be emitted. */
  suppressed: boolean
}

export type IncidentGrouper = {
  assign(
    agentId: string,
    time: number,
    correlationId: string,
    signals: readonly string[],
    ruleId?: string,
    score?: number,
    /** The earlier of the pair's two event times (default `time`): the evidence first_seen goes back to. */
    firstEventTime?: number,
  ): Assigned
  /** Forgets incidents whose last correlation + gap lies before `horizon`. */
  forgetBefore(horizon: number): void
  size(): number
  snapshot(): IncidentRecord[]
  /**
   * The incidents of every agent whose incidents changed or were forgotten since the last call (an empty
   * list: none left), so a checkpoint rewrites those agents' incidents and no others.
   */
  takeChanged(): Map<string, IncidentRecord[]>
}

const maxSignals = 100

/** Default bound: correlations kept per rule in one incident. */
export const defaultMaxPerRule = 100

/**
 * Renames per incident, at most. Arrival in a random order renames an incident about ln(n) times for n
 * correlations (each one earlier than every one before it), 10 for 10,000; CloudTrail files arrive in
 * time order each, so one late file renames it at most once.
 */
export const maxRenames = 32

/**
 * Incidents merged into one, at most. Out-of-order arrival merges incidents only when a late correlation
 * bridges two: a handful per incident.
 */
export const maxMerges = 32

type Earliest = NonNullable<IncidentRecord['earliest']>
/** An incident held in memory: its earliest correlation always known (restore fills it in, below). */
type Incident = IncidentRecord & { earliest: Earliest }

/**
 * The correlation of the earliest a restore gives an incident of a checkpoint without one (versions before
 * incidents kept it): their first_seen was the earliest correlation's time, its id unknown. The incident
 * keeps its id and groups from that time, as if the correlator had never stopped; no correlation id is
 * empty, and a newcomer at that very time does not come before it.
 */
const unknownCorrelation = ''
const before = (a: Earliest, b: Earliest) =>
  a.time < b.time || (a.time === b.time && a.correlation < b.correlation)

export function createIncidentGrouper(
  gap: number,
  restored: readonly IncidentRecord[] = [],
  maxPerRule = defaultMaxPerRule,
  /** Remember which agents changed, for takeChanged() (a checkpointing correlator; not a replay). */
  trackChanges = false,
): IncidentGrouper {
  const byAgent = new Map<string, Incident[]>()
  /** Agents whose incidents changed since the last takeChanged(). */
  const changed = new Set<string>()
  const noteChanged = (agent: string) => {
    if (trackChanges) changed.add(agent)
  }
  let count = 0
  /**
   * The id each earliest correlation gives its incident (`incidentId`, a sha256), kept per Earliest object
   * (never changed in place: a new earliest is a new object): an incident's id is checked against its
   * earliest at every correlation, and hashing it again each time cost about a microsecond apiece.
   */
  const earliestIds = new WeakMap<Earliest, string>()
  const idOfEarliest = (agentId: string, earliest: Earliest): string => {
    let id = earliestIds.get(earliest)
    if (id === undefined) {
      id = incidentId(agentId, earliest.correlation)
      earliestIds.set(earliest, id)
    }
    return id
  }
  for (const record of restored) {
    const list = byAgent.get(record.agent) ?? []
    const earliest = record.earliest ?? { time: record.first_seen, correlation: unknownCorrelation }
    if (earliest.correlation === unknownCorrelation) earliestIds.set(earliest, record.id)
    list.push({
      ...record,
      signals: [...record.signals],
      per_rule: { ...record.per_rule },
      best_score: { ...record.best_score },
      earliest,
    })
    byAgent.set(record.agent, list)
    count++
  }

  const assign = (
    agentId: string,
    time: number,
    correlationId: string,
    signals: readonly string[],
    ruleId = '',
    score = 0,
    firstEventTime = time,
  ): Assigned => {
    let list = byAgent.get(agentId)
    if (!list) {
      list = []
      byAgent.set(agentId, list)
    }
    // Grouping goes by correlation times: from the earliest correlation (first_seen, the earliest evidence,
    // may lie a window before it).
    const near = list.filter((i) => time >= i.earliest.time - gap && time <= i.last_seen + gap)
    const own: Earliest = { time, correlation: correlationId }
    let incident: Incident
    const merged: string[] = []
    if (near.length === 0) {
      incident = {
        agent: agentId,
        id: idOfEarliest(agentId, own),
        first_seen: firstEventTime,
        last_seen: time,
        correlation_count: 0,
        signals: [],
        earliest: own,
        per_rule: {},
        best_score: {},
      }
      list.push(incident)
      count++
    } else {
      // The survivor is the incident that keeps its id when no newcomer comes first: the earliest one.
      incident = near[0] as Incident
      for (const i of near) if (before(i.earliest, incident.earliest)) incident = i
      // Merged with all the near ones, or past the bound, joined to the survivor alone.
      const merges = near.reduce((n, i) => n + (i.merges ?? 0), near.length - 1)
      const joined = merges > maxMerges ? [incident] : near
      if (joined.length > 1) incident.merges = merges
      for (const other of joined) {
        if (other === incident) continue
        incident.first_seen = Math.min(incident.first_seen, other.first_seen)
        incident.last_seen = Math.max(incident.last_seen, other.last_seen)
        incident.correlation_count += other.correlation_count
        for (const s of other.signals) addSignal(incident.signals, s)
        mergeBounds(incident, other)
        merged.push(other.id)
        list.splice(list.indexOf(other), 1)
        count--
      }
      if (before(own, incident.earliest)) incident.earliest = own
      const id = idOfEarliest(agentId, incident.earliest)
      const renames = incident.renames ?? 0
      if (id !== incident.id && renames < maxRenames) {
        merged.push(incident.id)
        incident.id = id
        incident.renames = renames + 1
      }
    }
    incident.first_seen = Math.min(incident.first_seen, firstEventTime)
    incident.last_seen = Math.max(incident.last_seen, time)
    incident.correlation_count++
    noteChanged(agentId)
    const perRule = incident.per_rule ?? {}
    incident.per_rule = perRule
    const n = (perRule[ruleId] ?? 0) + 1
    perRule[ruleId] = n
    const best = incident.best_score ?? {}
    incident.best_score = best
    const stronger = score > (best[ruleId] ?? -1)
    // One that merges or renames incidents is emitted whatever the bound: only it says `merged`, and a store
    // that never saw it would keep the old incidents apart for good (at most `maxRenames` renames per
    // incident, and at most `maxMerges` incidents merged into one).
    const suppressed = n > maxPerRule && !stronger && merged.length === 0
    if (suppressed) incident.suppressed_count = (incident.suppressed_count ?? 0) + 1
    else if (stronger) best[ruleId] = score
    for (const s of signals) addSignal(incident.signals, s)
    const view: Assigned = {
      id: incident.id,
      first_seen: incident.first_seen,
      last_seen: incident.last_seen,
      correlation_count: incident.correlation_count,
      signals: [...incident.signals],
      suppressed,
    }
    if (incident.suppressed_count) view.suppressed_count = incident.suppressed_count
    if (merged.length > 0) view.merged = merged.sort()
    return view
  }

  const forgetBefore = (horizon: number) => {
    for (const [agent, list] of byAgent) {
      // Most sweeps forget nothing of most agents: a list is copied only when one of its incidents goes.
      let stale = false
      for (let k = 0; k < list.length && !stale; k++) stale = (list[k] as Incident).last_seen + gap < horizon
      if (!stale) continue
      const kept = list.filter((i) => i.last_seen + gap >= horizon)
      count -= list.length - kept.length
      noteChanged(agent)
      if (kept.length === 0) byAgent.delete(agent)
      else byAgent.set(agent, kept)
    }
  }

  // Object spread, not Object.assign: here the spread is the cheaper (Object.assign's generic builtin cost
  // 45 M more instructions over the pipeline bench's 20 checkpoints of 1,000 agents; docs/replay-rounds.md).
  const copy = (i: Incident): IncidentRecord => ({
    ...i,
    signals: [...i.signals],
    per_rule: { ...i.per_rule },
    best_score: { ...i.best_score },
    earliest: { ...i.earliest },
  })
  const snapshot = () => [...byAgent.values()].flat().map(copy)
  const takeChanged = () => {
    const taken = new Map<string, IncidentRecord[]>()
    for (const agent of changed) taken.set(agent, (byAgent.get(agent) ?? []).map(copy))
    changed.clear()
    return taken
  }

  return { assign, forgetBefore, size: () => count, snapshot, takeChanged }
}

/** A merged incident's bound counts join the survivor's: per-rule counts add up, best scores keep the max. */
function mergeBounds(into: Incident, other: Incident): void {
  const perRule = { ...into.per_rule }
  for (const [rule, n] of Object.entries(other.per_rule ?? {})) perRule[rule] = (perRule[rule] ?? 0) + n
  into.per_rule = perRule
  const best = { ...into.best_score }
  for (const [rule, score] of Object.entries(other.best_score ?? {}))
    best[rule] = Math.max(best[rule] ?? -1, score)
  into.best_score = best
  const suppressed = (into.suppressed_count ?? 0) + (other.suppressed_count ?? 0)
  if (suppressed > 0) into.suppressed_count = suppressed
  const renames = (into.renames ?? 0) + (other.renames ?? 0)
  if (renames > 0) into.renames = renames
}

/** Sorted insertion, so the list is the same whatever order the signals came in. */
function addSignal(signals: string[], s: string): void {
  if (signals.length >= maxSignals) return
  let lo = 0
  let hi = signals.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((signals[mid] as string) < s) lo = mid + 1
    else hi = mid
  }
  if (signals[lo] !== s) signals.splice(lo, 0, s)
}
