// DESIGN.md keeps "the first delivery of an event id wins", and whoever can write the trail (a forged log
// file, a forged topic record) can use it to pre-empt a real record: a copy of its eventID, dated a second
// earlier under another role, was kept and the real IAM write dropped as a redelivery, uncounted apart
// from CloudTrail's own byte-for-byte redeliveries. A copy that differs in what matters is now counted
// apart (conflicting_duplicate, replay's duplicate_conflicts) and named; first-wins stays.
import { describe, expect, it } from 'vitest'
import { createCorrelator } from '../../../correlate/correlator.ts'
import type { CorrelatorConfig } from '../../../correlate/correlator-types.ts'
import { createReplay } from '../../../correlate/replay-correlations.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { anyThenIam, coreEvent, edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const config: CorrelatorConfig = {
  rules: [anyThenIam],
  window: { before: 60_000, after: 600_000, grace: 300_000 },
  max_events_per_agent: 1000,
  memory_budget_bytes: 1 << 26,
  incident_gap: 1_800_000,
  self_identities: [],
}
const id = '5a5a5a5a-0000-4000-8000-000000000001'
const real = () =>
  coreEvent({ id, time: T0 + 60_000, target: 'stratus-red-team-malicious-iam-role', agent: 'data-cleaner' })

describe('a conflicting copy of an event id in the correlator', () => {
  it("counts a copy that differs in what matters apart from CloudTrail's own redelivery", () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ id: 'shell-1', time: T0, agent: 'data-cleaner' }))
    expect(c.accept(real()).correlations).toHaveLength(1)
    // CloudTrail delivering the same record again: a duplicate, not a conflict.
    expect(c.accept(real())).toMatchObject({ duplicate: true })
    expect(c.accept(real()).conflict).toBeUndefined()
    const forged = [
      { ...real(), time: T0 + 59_000 },
      coreEvent({
        id,
        time: T0 + 60_000,
        target: 'stratus-red-team-malicious-iam-role',
        action: 'iam:PutRolePolicy',
      }),
      coreEvent({
        id,
        time: T0 + 60_000,
        target: 'stratus-red-team-malicious-iam-role',
        principal: 'arn:aws:iam::609418236337:role/zzz-other',
      }),
      coreEvent({
        id,
        time: T0 + 60_000,
        target: 'stratus-red-team-malicious-iam-role',
        accessKeyId: 'ASIAFORGED000000000',
      }),
      coreEvent({
        id,
        time: T0 + 60_000,
        target: 'stratus-red-team-malicious-iam-role',
        errorCode: 'AccessDenied',
      }),
      coreEvent({ id, time: T0 + 60_000, target: 'x' }),
      { ...real(), agent: { id: 'innocent-bot', resolved_by: 'registry' as const } },
    ]
    for (const copy of forged) {
      const result = c.accept(copy)
      expect(result).toMatchObject({ duplicate: true, conflict: true })
      expect(result.correlations).toEqual([])
    }
    expect(c.stats()).toMatchObject({ duplicate: 2 + forged.length, conflicting_duplicate: forged.length })
  })

  it('keeps the first copy, a forged one that came first included, and counts the real one as conflicting', () => {
    const c = createCorrelator(config)
    c.accept(edgeEvent({ id: 'shell-1', time: T0, agent: 'data-cleaner' }))
    const forged = coreEvent({
      id,
      time: T0 + 59_000,
      agent: 'zzz-other',
      principal: 'arn:aws:iam::609418236337:role/zzz-other',
      target: 'x',
    })
    expect(c.accept(forged).correlations).toEqual([])
    const result = c.accept(real())
    expect(result).toMatchObject({ duplicate: true, conflict: true, correlations: [] })
    expect(c.stats().conflicting_duplicate).toBe(1)
  })
})

describe('a conflicting copy of an event id in replay', () => {
  const replayConfig = loadConfig()

  it('counts same-time copies that differ, a stand-in against an event included, and names them', () => {
    const replay = createReplay(replayConfig, { sameTimeDuplicates: true })
    const event = real()
    replay.push(event)
    replay.push(real())
    replay.push({ ...real(), core: { ...event.core, error_code: 'AccessDenied' } } as typeof event)
    // A read-only copy replay held as a time-only stand-in, at the same time.
    replay.push({ id, time: event.time, time_ns: 0, ignored: 'no_rule' })
    // Copies of an id at another time reach the correlator, which holds the first while it is buffered.
    replay.push({ ...real(), time: event.time + 1_000 })
    expect(replay.counts()).toMatchObject({ read: 5, duplicate: 4, duplicate_conflicts: 3 })
    expect(replay.conflictingIds()).toEqual([id, id, id])
  })

  it('in input order compares with the first event of the id, whenever it came', () => {
    const replay = createReplay(replayConfig)
    replay.push(real())
    replay.push(coreEvent({ id: 'other', time: T0 }))
    replay.push(real())
    replay.push({ ...real(), time: T0 })
    expect(replay.counts()).toMatchObject({ duplicate: 2, duplicate_conflicts: 1 })
  })
})
