// Checkpoints written before incidents kept their earliest correlation (`earliest`) still restore to the
// incidents a correlator that never stopped would have: the restored incident keeps its id, and it groups
// from its earliest correlation time, the first_seen of that version, even after a correlation whose Falco
// alert lies a window before it lowers first_seen (the earliest evidence). A late correlation more than
// the gap before the incident opens an incident of its own, as it would without the restart.
import { describe, expect, it } from 'vitest'
import { incidentId } from '../../../correlate/correlation-id.ts'
import { createIncidentGrouper, type IncidentRecord } from '../../../correlate/group-incidents.ts'

const minute = 60_000
const gap = 30 * minute
const T = Date.UTC(2026, 11, 6, 12)
const agent = 'k8s:prod-eu1:payments:api-7f9c4'
const signals = ['edge:Terminal shell in container', 'core:iam:AttachRolePolicy']

/** One incident as today's correlator checkpoints it, and as a version without `earliest` did. */
const current: IncidentRecord = {
  agent,
  id: incidentId(agent, 'c0'),
  first_seen: T,
  last_seen: T,
  correlation_count: 1,
  signals,
  earliest: { time: T, correlation: 'c0' },
  per_rule: { 'shell-then-iam': 1 },
  best_score: { 'shell-then-iam': 70 },
}
const { earliest: _, ...legacy } = current

/** Restart, then a correlation whose alert is 15 min before its CloudTrail call, then one 40 min early. */
function continueAfterRestart(restored: IncidentRecord[]) {
  const g = createIncidentGrouper(gap, JSON.parse(JSON.stringify(restored)))
  const next = g.assign(agent, T + 1, 'c1', signals, 'shell-then-iam', 70, T + 1 - 15 * minute)
  const late = g.assign(agent, T - 40 * minute, 'c2', signals, 'shell-then-iam', 70)
  return { g, next, late }
}

describe('incidents restored from checkpoints without earliest', () => {
  it('keep their id, and a correlation beyond the gap of their earliest opens a new incident', () => {
    const live = continueAfterRestart([current])
    const old = continueAfterRestart([legacy])
    expect(old.next).toEqual(live.next)
    expect(old.next).toMatchObject({ id: current.id, first_seen: T + 1 - 15 * minute })
    expect(live.late.id).toBe(incidentId(agent, 'c2'))
    expect(old.late).toEqual(live.late)
    expect(old.g.size()).toBe(2)
  })

  it('keep grouping from that time across further checkpoints and restarts', () => {
    const first = continueAfterRestart([legacy])
    const again = createIncidentGrouper(gap, JSON.parse(JSON.stringify(first.g.snapshot())))
    // 31 min before the first correlation: beyond its gap, within the gap of first_seen (15 min before it).
    const late = again.assign(agent, T - 31 * minute, 'c3', signals, 'shell-then-iam', 70)
    expect(late.merged).toBeUndefined()
    expect(late.id).not.toBe(current.id)
    const kept = again.assign(agent, T + 2 * minute, 'c4', signals, 'shell-then-iam', 70)
    expect(kept.id).toBe(current.id)
  })
})
