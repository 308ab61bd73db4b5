// Correlations of one agent that lie within `incident_gap` of each other in event time share an incident
// (GuardDuty attack sequences: first/last seen, count, signals). Assigned in the pure core, in input order,
// so replay and restart give the same incident ids. An incident is forgotten once no future correlation
// can fall within its gap (the caller passes that horizon).
import { incidentId } from './correlation-id.ts'

export type IncidentView = {
  id: string
  first_seen: number
  last_seen: number
  correlation_count: number
  /** Distinct signals so far: `edge:<Falco rule>` and `core:<service:EventName>`, at most 100. */
  signals: string[]
}

export type IncidentRecord = IncidentView & { agent: string }

export type IncidentGrouper = {
  assign(agentId: string, time: number, correlationId: string, signals: readonly string[]): IncidentView
  /** Forgets incidents whose last correlation + gap lies before `horizon`. */
  forgetBefore(horizon: number): void
  size(): number
  snapshot(): IncidentRecord[]
  /** Grows whenever an incident changes or is forgotten, so a checkpoint rewrites them only then. */
  revision(): number
}

const maxSignals = 100

export function createIncidentGrouper(
  gap: number,
  restored: readonly IncidentRecord[] = [],
): IncidentGrouper {
  const byAgent = new Map<string, IncidentRecord[]>()
  let count = 0
  let revision = 0
  for (const record of restored) {
    const list = byAgent.get(record.agent) ?? []
    list.push({ ...record, signals: [...record.signals] })
    byAgent.set(record.agent, list)
    count++
  }

  const assign = (agentId: string, time: number, correlationId: string, signals: readonly string[]) => {
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
      }
      list.push(incident)
      count++
    }
    incident.first_seen = Math.min(incident.first_seen, time)
    incident.last_seen = Math.max(incident.last_seen, time)
    incident.correlation_count++
    revision++
    for (const s of signals) {
      if (incident.signals.length < maxSignals && !incident.signals.includes(s)) incident.signals.push(s)
    }
    const { agent: _agent, ...view } = incident
    return { ...view, signals: [...incident.signals] }
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

  const snapshot = () => [...byAgent.values()].flat().map((i) => ({ ...i, signals: [...i.signals] }))

  return { assign, forgetBefore, size: () => count, snapshot, revision: () => revision }
}
