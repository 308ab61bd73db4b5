// Per-agent behavioural baseline: which actions an agent calls, which resources (secret ids, parameter
// names, buckets, roles…) it touches, at which hours, and how fast, learned as a stream from the core
// events some rule can use (the calls nothing can correlate never matter to a score). Pure and driven by
// event time only, so replay and restart give the same bytes; checkpointed with the correlator state.
// Bounded: per agent at most `maxActions` actions, `maxResources` resources and the last `recentCalls`
// calls; across agents a byte estimate kept under the baseline's share of the memory budget, shedding the
// agent seen least recently first (counted). Anything not seen for `history` is forgotten.
// What a correlation's score makes of it is baseline-verdict.ts.

export type BaselineConfig = {
  enabled: boolean
  /** How long an action or resource is remembered, ms. */
  history: number
  /** An agent is judged novel or routine only once its first and last calls are this far apart, ms. */
  warmup: number
  /** Calls of an action in the last 7 days from which it is routine. */
  routine_min: number
  /** The burst window, ms, and the distinct resources in it that make a burst. */
  burst_window: number
  burst_min: number
  /** Byte budget of the whole baseline. */
  memory_bytes: number
}

export type ActionStats = {
  first: number
  last: number
  /** [day, count] pairs (day = epoch day), at most 7, oldest first: "seen K times this week". */
  days: [number, number][]
}

export type ResourceStats = { first: number; last: number; count: number }

/** One agent's baseline as data: what a checkpoint holds (maps as [key, value] lists, in insertion order). */
export type AgentBaselineRecord = {
  agent: string
  first: number
  last: number
  calls: number
  /** Calls per UTC hour of day, 24 counts. */
  hours: number[]
  actions: [string, ActionStats][]
  resources: [string, ResourceStats][]
  /** The last calls: [time, resource key or action]. */
  recent: [number, string][]
}

export type AgentBaseline = {
  agent: string
  first: number
  last: number
  calls: number
  hours: number[]
  actions: Map<string, ActionStats>
  resources: Map<string, ResourceStats>
  /**
   * The last calls (at most recentCalls) as a ring of two parallel lists: each call's time (a list of
   * doubles, kept unboxed) and its resource key or action (strings the call details share). Once full,
   * `recentNext` is the oldest call's place, where the next call is written: a call adds no object, where
   * a [time, key] pair per call lived for the agent's next 32 calls and was promoted to the old generation.
   * Order within the ring does not matter to a verdict; recentCallsOf gives them oldest first.
   */
  recentTimes: number[]
  recentKeys: string[]
  recentNext: number
  bytes: number
  /**
   * Lower bounds of the oldest `last` among its actions and resources and of the oldest day its actions
   * count: a sweep whose horizon is below both has nothing of the agent to forget and skips its maps.
   */
  oldestLast: number
  oldestDay: number
}

export type BaselineChanges = { upserted: AgentBaselineRecord[]; removed: string[] }

export type BaselineStore = {
  readonly config: BaselineConfig
  get(agent: string): AgentBaseline | undefined
  /** Learns one call (after it was judged, so a call is never its own history). */
  observe(agent: string, time: number, action: string, resource: string | undefined): void
  /** Forgets what was last seen before `horizon`, ms. */
  forgetBefore(horizon: number): void
  bytes(): number
  agents(): number
  evicted(): number
  snapshot(): AgentBaselineRecord[]
  /** The agents changed and removed since the last call. */
  takeChanges(): BaselineChanges
}

export const maxActions = 64
export const maxResources = 256
export const recentCalls = 32
const dayMs = 86_400_000
const hourMs = 3_600_000

/** An agent's last calls, oldest first, as [time, resource key or action] (what a checkpoint holds). */
export function recentCallsOf(a: AgentBaseline): [number, string][] {
  const calls: [number, string][] = []
  const n = a.recentKeys.length
  for (let i = 0; i < n; i++) {
    const at = (a.recentNext + i) % n
    calls.push([a.recentTimes[at] as number, a.recentKeys[at] as string])
  }
  return calls
}

export const dayOf = (time: number): number => Math.floor(time / dayMs)
export const hourOf = (time: number): number => Math.floor((((time % dayMs) + dayMs) % dayMs) / hourMs)
/** `secretsmanager:GetSecretValue` + `prod/db` → `secretsmanager:prod/db`: resources are per service. */
export const resourceKey = (action: string, target: string): string =>
  `${action.slice(0, action.indexOf(':'))}:${target}`

// Estimated heap bytes: an agent's maps, arrays and record; each action, resource and recent call.
const agentBytes = 600
const actionBytes = (name: string) => 160 + name.length
const resourceBytes = (key: string) => 120 + key.length
const recentBytes = 48

export function createBaselineStore(
  config: BaselineConfig,
  restored: readonly AgentBaselineRecord[] = [],
): BaselineStore {
  const byAgent = new Map<string, AgentBaseline>()
  const dirty = new Set<string>()
  const removed = new Set<string>()
  let total = 0
  let evicted = 0

  const weigh = (a: AgentBaseline): number => {
    let bytes = agentBytes + a.agent.length + a.recentKeys.length * recentBytes
    for (const name of a.actions.keys()) bytes += actionBytes(name)
    for (const key of a.resources.keys()) bytes += resourceBytes(key)
    return bytes
  }

  for (const r of restored) {
    const a: AgentBaseline = {
      agent: r.agent,
      first: r.first,
      last: r.last,
      calls: r.calls,
      hours: [...r.hours],
      actions: new Map(r.actions.map(([k, v]) => [k, { ...v, days: v.days.map((d) => [d[0], d[1]]) }])),
      resources: new Map(r.resources.map(([k, v]) => [k, { ...v }])),
      recentTimes: [],
      recentKeys: [],
      recentNext: 0,
      bytes: 0,
      oldestLast: Number.NEGATIVE_INFINITY,
      oldestDay: Number.NEGATIVE_INFINITY,
    }
    // The newest recentCalls of the record, oldest first (a record holds no more, but is data).
    for (let i = Math.max(0, r.recent.length - recentCalls); i < r.recent.length; i++) {
      const [time, key] = r.recent[i] as [number, string]
      a.recentTimes.push(time)
      a.recentKeys.push(key)
    }
    a.bytes = weigh(a)
    total += a.bytes
    byAgent.set(a.agent, a)
  }

  const drop = (agent: string) => {
    const a = byAgent.get(agent)
    if (!a) return
    total -= a.bytes
    byAgent.delete(agent)
    dirty.delete(agent)
    removed.add(agent)
  }

  /** The agent seen least recently goes first. */
  const shed = (keep: string) => {
    while (total > config.memory_bytes && byAgent.size > 1) {
      let oldest: AgentBaseline | undefined
      for (const a of byAgent.values()) {
        if (a.agent === keep) continue
        // Ties go by agent id, not by map order: a restored store must shed the same agent.
        if (
          oldest === undefined ||
          a.last < oldest.last ||
          (a.last === oldest.last && a.agent < oldest.agent)
        )
          oldest = a
      }
      if (!oldest) return
      drop(oldest.agent)
      evicted++
    }
  }

  const leastRecent = <V extends { last: number }>(map: Map<string, V>): string | undefined => {
    let key: string | undefined
    let last = Number.POSITIVE_INFINITY
    for (const [k, v] of map) {
      if (v.last < last) {
        key = k
        last = v.last
      }
    }
    return key
  }

  const observe = (agent: string, time: number, action: string, resource: string | undefined) => {
    let a = byAgent.get(agent)
    if (!a) {
      a = {
        agent,
        first: time,
        last: time,
        calls: 0,
        hours: new Array(24).fill(0),
        actions: new Map(),
        resources: new Map(),
        recentTimes: [],
        recentKeys: [],
        recentNext: 0,
        // weigh() of an agent with nothing learned yet; observe() keeps it up to date from here on.
        bytes: agentBytes + agent.length,
        oldestLast: time,
        oldestDay: dayOf(time),
      }
      byAgent.set(agent, a)
      removed.delete(agent)
    } else total -= a.bytes
    a.first = Math.min(a.first, time)
    a.last = Math.max(a.last, time)
    a.calls++
    a.hours[hourOf(time)] = (a.hours[hourOf(time)] as number) + 1
    if (time < a.oldestLast) a.oldestLast = time
    if (dayOf(time) < a.oldestDay) a.oldestDay = dayOf(time)
    let stats = a.actions.get(action)
    if (!stats) {
      if (a.actions.size >= maxActions) {
        const oldest = leastRecent(a.actions) as string
        a.actions.delete(oldest)
        a.bytes -= actionBytes(oldest)
      }
      stats = { first: time, last: time, days: [] }
      a.actions.set(action, stats)
      a.bytes += actionBytes(action)
    }
    stats.first = Math.min(stats.first, time)
    stats.last = Math.max(stats.last, time)
    countDay(stats.days, dayOf(time))
    if (resource !== undefined) {
      let r = a.resources.get(resource)
      if (!r) {
        if (a.resources.size >= maxResources) {
          const oldest = leastRecent(a.resources) as string
          a.resources.delete(oldest)
          a.bytes -= resourceBytes(oldest)
        }
        r = { first: time, last: time, count: 0 }
        a.resources.set(resource, r)
        a.bytes += resourceBytes(resource)
      }
      r.first = Math.min(r.first, time)
      r.last = Math.max(r.last, time)
      r.count++
    }
    if (a.recentKeys.length < recentCalls) {
      a.recentTimes.push(time)
      a.recentKeys.push(resource ?? action)
      a.bytes += recentBytes
    } else {
      // Full: the oldest call's place takes the new one.
      const at = a.recentNext
      a.recentTimes[at] = time
      a.recentKeys[at] = resource ?? action
      a.recentNext = at + 1 === recentCalls ? 0 : at + 1
    }
    // Kept step by step above (the same sum as weigh()): weighing every key of the agent on each call
    // was the baseline's largest cost.
    total += a.bytes
    dirty.add(agent)
    shed(agent)
  }

  const forgetBefore = (horizon: number) => {
    // Deleting the entry being visited is safe in a Map's iteration: no copy of every agent per sweep.
    for (const a of byAgent.values()) {
      if (a.last < horizon) {
        drop(a.agent)
        continue
      }
      let changed = false
      const horizonDay = dayOf(horizon)
      if (a.oldestLast < horizon || a.oldestDay < horizonDay) {
        // What is left sets the bounds anew (observe() lowers them again as it adds).
        let oldestLast = Number.POSITIVE_INFINITY
        let oldestDay = Number.POSITIVE_INFINITY
        for (const [name, stats] of a.actions) {
          if (stats.last < horizon) {
            a.actions.delete(name)
            a.bytes -= actionBytes(name)
            total -= actionBytes(name)
            changed = true
            continue
          }
          if (stats.days.length > 0 && (stats.days[0] as [number, number])[0] < horizonDay) {
            stats.days = stats.days.filter(([day]) => day >= horizonDay)
            changed = true
          }
          if (stats.last < oldestLast) oldestLast = stats.last
          const first = stats.days[0]
          if (first !== undefined && first[0] < oldestDay) oldestDay = first[0]
        }
        for (const [key, r] of a.resources) {
          if (r.last < horizon) {
            a.resources.delete(key)
            a.bytes -= resourceBytes(key)
            total -= resourceBytes(key)
            changed = true
          } else if (r.last < oldestLast) oldestLast = r.last
        }
        a.oldestLast = oldestLast
        a.oldestDay = oldestDay
      }
      if (a.first < horizon) {
        a.first = horizon
        changed = true
      }
      if (!changed) continue
      // a.bytes and total followed the keys deleted above (the same sum as weigh()).
      dirty.add(a.agent)
    }
  }

  // Each array and object below is built by literal and push, so it has the same map whichever tier runs
  // this: Array.prototype.map's result was holey from the builtin and packed once TurboFan inlined it, and
  // the checkpoint's baselineRecordJson, optimized on one, deoptimized on the other in every run.
  const record = (a: AgentBaseline): AgentBaselineRecord => {
    const actions: AgentBaselineRecord['actions'] = []
    for (const [k, v] of a.actions) {
      const days: [number, number][] = []
      for (const d of v.days) days.push([d[0], d[1]])
      actions.push([k, { first: v.first, last: v.last, days }])
    }
    const resources: AgentBaselineRecord['resources'] = []
    for (const [k, v] of a.resources) resources.push([k, { first: v.first, last: v.last, count: v.count }])
    const recent = recentCallsOf(a)
    const hours: number[] = []
    for (const h of a.hours) hours.push(h)
    return { agent: a.agent, first: a.first, last: a.last, calls: a.calls, hours, actions, resources, recent }
  }

  const takeChanges = (): BaselineChanges => {
    const changes: BaselineChanges = {
      upserted: [...dirty].map((agent) => record(byAgent.get(agent) as AgentBaseline)),
      removed: [...removed],
    }
    dirty.clear()
    removed.clear()
    return changes
  }

  return {
    config,
    get: (agent) => byAgent.get(agent),
    observe,
    forgetBefore,
    bytes: () => total,
    agents: () => byAgent.size,
    evicted: () => evicted,
    snapshot: () => [...byAgent.values()].map(record),
    takeChanges,
  }
}

/** Adds one call to its day; keeps the last 7 days. */
function countDay(days: [number, number][], day: number): void {
  const last = days[days.length - 1]
  if (last && last[0] === day) {
    last[1]++
    return
  }
  const at = days.findIndex(([d]) => d === day)
  if (at >= 0) {
    ;(days[at] as [number, number])[1]++
    return
  }
  days.push([day, 1])
  days.sort((a, b) => a[0] - b[0])
  while (days.length > 7) days.shift()
}
