// The incidents the store writer touched lately, kept in memory with the edge and core event ids of
// their correlations, so that counting an incident's distinct events needs no index probe.

import type { IncidentRow } from './store-reads.ts'
import type { CorrelationHead } from './store-record-fields.ts'

/**
 * The incidents this writer touched lately, as their rows stand on disk plus the edge and core event
 * ids of their correlations: a batch reads an incident's row and ids once, when it is not here, instead
 * of reading the row per batch and probing two (incident, event) indexes per correlation. Bounded by
 * the ids it holds (least recently used incidents go first). Only valid while this connection alone
 * writes: emptied when another connection committed (PRAGMA data_version), when a write fails (its
 * changes rolled back) and by retention.
 */
export function createIncidentCache(load: {
  row(incidentId: string): IncidentRow | undefined
  events(row: IncidentRow): Iterable<{ edge_event_id: string; core_event_id: string }>
}) {
  const cache = new Map<string, IncidentTally>()
  let cachedIds = 0
  const forget = (id: string) => {
    const tally = cache.get(id)
    if (!tally) return
    cachedIds -= tally.weight()
    cache.delete(id)
  }
  return {
    /** Its tally if held, without touching its place in the order. */
    cached: (incidentId: string) => cache.get(incidentId),
    forget,
    forgetAll() {
      cache.clear()
      cachedIds = 0
    },
    /** Drops the least recently used incidents past the bound. */
    trim() {
      for (const [id] of cache) {
        if (cachedIds <= maxCachedIds) break
        forget(id)
      }
    },
    tallyFor(incidentId: string, agentId: string) {
      const cached = cache.get(incidentId)
      if (cached) {
        // Most recently used last.
        cache.delete(incidentId)
        cache.set(incidentId, cached)
        return cached
      }
      const row = load.row(incidentId)
      const tally = tallyOf(row, agentId)
      if (row) for (const r of load.events(row)) tally.seen(r.edge_event_id, r.core_event_id)
      cache.set(incidentId, tally)
      cachedIds += tally.weight()
      return tally
    },
    /** Counts a new correlation into its incident's tally. */
    add(tally: IncidentTally, c: CorrelationHead) {
      cachedIds += tally.add(c)
    },
  }
}

/** Distinct Falco rule names kept per incident: the watched agent may name its alerts anything. */
const maxFalcoRules = 64

export type IncidentTally = ReturnType<typeof tallyOf>

/** Edge and core event ids the writer keeps in memory for the incidents it touched lately. */
const maxCachedIds = 200_000

/**
 * An incident's row as the writer keeps it: counts, bounds, and the edge and core event ids of its
 * correlations, so that "a new event of the incident" needs no index probe.
 */
export function tallyOf(row: IncidentRow | undefined, agentId: string) {
  const edges = new Set<string>()
  const cores = new Set<string>()
  const rules = new Set<string>(row ? (JSON.parse(row.rules) as string[]) : [])
  const actions = new Set<string>(row ? (JSON.parse(row.actions) as string[]) : [])
  const falcoRules = new Set<string>(row ? (JSON.parse(row.falco_rules) as string[]) : [])
  /** Whether its row on disk holds the rule, action and Falco rule lists as they are here. */
  let listsOnDisk = row !== undefined
  const addTo = (set: Set<string>, value: string) => {
    if (set.has(value)) return
    set.add(value)
    listsOnDisk = false
  }
  const t = {
    agent_id: row?.agent_id ?? agentId,
    first_seen: row?.first_seen ?? Number.POSITIVE_INFINITY,
    last_seen: row?.last_seen ?? Number.NEGATIVE_INFINITY,
    correlations: row?.correlations ?? 0,
    edge_events: row?.edge_events ?? 0,
    core_events: row?.core_events ?? 0,
    max_score: row?.max_score ?? 0,
  }
  return {
    /** No correlation yet: the incident opens with the next one. */
    isEmpty: () => t.correlations === 0,
    /** The ids it holds, for the cache's bound. */
    weight: () => 1 + edges.size + cores.size,
    /** A stored correlation's events, as the incident is loaded. */
    seen(edge: string, core: string) {
      edges.add(edge)
      cores.add(core)
    },
    /** Counts a new correlation in; returns how many ids it added. */
    add(c: CorrelationHead): number {
      const before = edges.size + cores.size
      if (!edges.has(c.edge.event_id)) {
        edges.add(c.edge.event_id)
        t.edge_events++
      }
      if (!cores.has(c.core.event_id)) {
        cores.add(c.core.event_id)
        t.core_events++
      }
      // The correlator's first and last seen, which also count the correlations it suppressed (never
      // stored), and the pair's own times for records that carry no incident bounds.
      t.first_seen = Math.min(t.first_seen, c.edge.time, c.core.time, c.incident.first_seen ?? Infinity)
      t.last_seen = Math.max(t.last_seen, c.time, c.incident.last_seen ?? -Infinity)
      t.correlations++
      t.max_score = Math.max(t.max_score, c.score)
      addTo(rules, c.rule.id)
      addTo(actions, c.core.action)
      if (falcoRules.size < maxFalcoRules) addTo(falcoRules, c.edge.rule)
      return edges.size + cores.size - before
    },
    /** Its row is on disk with these lists: only its counts and bounds need writing (updateIncidentCounts). */
    listsWritten: () => listsOnDisk,
    /** Its row was written in the current transaction (a failed one empties the cache). */
    written() {
      listsOnDisk = true
    },
    counts: (id: string): [number, number, number, number, number, number, string] => [
      t.first_seen,
      t.last_seen,
      t.correlations,
      t.edge_events,
      t.core_events,
      t.max_score,
      id,
    ],
    row: (id: string) => ({
      id,
      ...t,
      rules: JSON.stringify([...rules]),
      actions: JSON.stringify([...actions]),
      falco_rules: JSON.stringify([...falcoRules]),
    }),
  }
}
