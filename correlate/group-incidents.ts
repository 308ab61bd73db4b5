// Correlations of one agent that lie within `incident_gap` of each other in event time share an incident
// (GuardDuty attack sequences: first/last seen, count, signals). Assigned in the pure core, in input order,
// so replay and restart give the same incident ids. An incident is forgotten once no future correlation
// can fall within its gap (the caller passes that horizon).
// Bounded per incident: the first `maxPerRule` correlations of each rule are kept, the rest are counted as
// suppressed on the incident and not emitted (Elastic's alert suppression), so 200 alerts × 200 denied
// calls of one agent cannot write 40,000 documents; correlation_count stays the true count. One over the
// bound that scores higher than every one of its rule so far is still emitted (at most one per score
// point), so the revoke decision never misses the incident's strongest evidence.
import { incidentId } from './correlation-id.ts'

export type IncidentView = {
  id: string
  first_seen: number
  last_seen: number
  /** Every correlation of the incident so far, suppressed ones included. */
  correlation_count: number
  /** Correlations over the per-rule bound, counted but not emitted (absent while none). */
  suppressed_count?: number
  /** Distinct signals so far: `edge:<Falco rule>` and `core:<service:EventName>`, at most 100. */
  signals: string[]
}

export type IncidentRecord = IncidentView & {
  agent: string
  /** Correlations so far per rule id (absent in checkpoints written before the bound). */
  per_rule?: Record<string, number>
  /** The highest score emitted so far per rule id. */
  best_score?: Record<string, number>
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
  ): Assigned
  /** Forgets incidents whose last correlation + gap lies before `horizon`. */
  forgetBefore(horizon: number): void
  size(): number
  snapshot(): IncidentRecord[]
  /** Grows whenever an incident changes or is forgotten, so a checkpoint rewrites them only then. */
  revision(): number
}

const maxSignals = 100

/** Default bound: correlations kept per rule in one incident. */
export const defaultMaxPerRule = 100

export function createIncidentGrouper(
  gap: number,
  restored: readonly IncidentRecord[] = [],
  maxPerRule = defaultMaxPerRule,
): IncidentGrouper {
  const byAgent = new Map<string, IncidentRecord[]>()
  let count = 0
  let revision = 0
  for (const record of restored) {
    const list = byAgent.get(record.agent) ?? []
    list.push({
      ...record,
      signals: [...record.signals],
      per_rule: { ...record.per_rule },
      best_score: { ...record.best_score },
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
  ): Assigned => {
    let list = byAgent.get(agentId)
    if (!list) {
      list = []
      byAgent.set(agentId, list)
    }
    let incident = list.find((i) => time >= i.first_seen - gap && time <= i.last_seen + gap)
    if (!incident) {
      incident = {
        agent: agentId,
        id: incidentId(agentId, correlationId),
        first_seen: time,
        last_seen: time,
        correlation_count: 0,
        signals: [],
        per_rule: {},
        best_score: {},
      }
      list.push(incident)
      count++
    }
    incident.first_seen = Math.min(incident.first_seen, time)
    incident.last_seen = Math.max(incident.last_seen, time)
    incident.correlation_count++
    revision++
    const perRule = incident.per_rule ?? {}
    incident.per_rule = perRule
    const n = (perRule[ruleId] ?? 0) + 1
    perRule[ruleId] = n
    const best = incident.best_score ?? {}
    incident.best_score = best
    const stronger = score > (best[ruleId] ?? -1)
    const suppressed = n > maxPerRule && !stronger
    if (suppressed) incident.suppressed_count = (incident.suppressed_count ?? 0) + 1
    else if (stronger) best[ruleId] = score
    for (const s of signals) {
      if (incident.signals.length < maxSignals && !incident.signals.includes(s)) incident.signals.push(s)
    }
    const { agent: _agent, per_rule: _perRule, best_score: _best, ...view } = incident
    return { ...view, signals: [...incident.signals], suppressed }
  }

  const forgetBefore = (horizon: number) => {
    for (const [agent, list] of byAgent) {
      const kept = list.filter((i) => i.last_seen + gap >= horizon)
      if (kept.length === list.length) continue
      count -= list.length - kept.length
      revision++
      if (kept.length === 0) byAgent.delete(agent)
      else byAgent.set(agent, kept)
    }
  }

  const snapshot = () =>
    [...byAgent.values()].flat().map((i) => ({
      ...i,
      signals: [...i.signals],
      per_rule: { ...i.per_rule },
      best_score: { ...i.best_score },
    }))

  return { assign, forgetBefore, size: () => count, snapshot, revision: () => revision }
}
