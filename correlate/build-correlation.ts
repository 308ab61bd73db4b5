// One correlation record from a matched pair of buffered entries: ids, both events' fields, the window,
// the score with its reasons, and the incident it joins (assigned here, in input order, for replay).
import type { Correlation } from '../schemas/types.ts'
import type { CoreDetail, EdgeDetail, Entry } from './agent-windows.ts'
import { correlationId } from './correlation-id.ts'
import type { IncidentGrouper } from './group-incidents.ts'
import type { CompiledRule } from './match-rules.ts'
import { scoreCorrelation } from './score-correlation.ts'

export function buildCorrelation(
  rule: CompiledRule,
  e: Entry,
  c: Entry,
  incidents: IncidentGrouper,
): Correlation {
  const ed = e.detail as EdgeDetail
  const cd = c.detail as CoreDetail
  const id = correlationId(rule.id, e.id, c.id)
  const time = Math.max(e.time, c.time)
  const deltaMs = c.time - e.time
  const { score, reasons } = scoreCorrelation({
    severity: rule.severity,
    priority: ed.priority,
    action: cd.action,
    readOnly: cd.read_only,
    errorCode: cd.error_code,
    deltaMs,
  })
  const incident = incidents.assign(e.window.key, time, id, [`edge:${ed.rule}`, `core:${cd.action}`])
  const { side: _side, ...core } = cd
  return {
    id,
    time,
    rule: { id: rule.id, severity: rule.severity, revoke: rule.revoke, version: rule.version },
    agent: {
      id: e.window.key,
      resolved_by: e.who.resolved_by !== 'unresolved' ? e.who.resolved_by : c.who.resolved_by,
      identity: { ...c.who.identity, ...e.who.identity },
    },
    edge: {
      event_id: e.id,
      time: e.time,
      rule: ed.rule,
      priority: ed.priority,
      output: e.output,
      hostname: ed.hostname,
      source: ed.source,
      tags: [...ed.tags],
    },
    core: { event_id: c.id, time: c.time, ...core },
    delta_ms: deltaMs,
    window: { ...rule.window },
    score,
    reasons,
    incident,
    lag_at_arrival: { edge: e.lag, core: c.lag },
  }
}
