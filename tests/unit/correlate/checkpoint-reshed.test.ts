// An entry the running correlator sheds must leave its checkpoint too, or a later restart brings it back
// to pair with later alerts: one shed, delivered again (CloudTrail's same eventID through EventBridge and
// then S3, an SQS redelivery) and shed again between two saves, and one a restart under a smaller cap
// sheds as it restores.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createSqliteCheckpointStore } from '../../../correlate/checkpoint-store.ts'
import { createCorrelator } from '../../../correlate/correlator.ts'
import type { CorrelatorConfig } from '../../../correlate/correlator-types.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)

/** Two core entries per agent; STS calls are kept for a shorter window than IAM calls. */
const config: CorrelatorConfig = {
  rules: [
    { id: 'any-then-iam', edge: {}, core: { actions: ['iam:*'] }, severity: 80, revoke: true },
    {
      id: 'any-then-sts',
      edge: {},
      core: { actions: ['sts:*'] },
      window: { before: 1_000, after: 1_000, grace: 1_000 },
      severity: 40,
      revoke: false,
    },
  ],
  window: { before: 1_000, after: 10_000, grace: 5_000 },
  max_events_per_agent: 2,
  memory_budget_bytes: 1 << 26,
  incident_gap: 60_000,
  self_identities: [],
}

const attach = (id: string, time: number) => coreEvent({ id, time, action: 'iam:AttachRolePolicy' })

describe('checkpoint of shed entries', () => {
  it('restores without the shed event, so a later alert pairs as in an uninterrupted run', async () => {
    const redelivered = attach('c0', T0 + 1_000)
    // Checkpointed: c0. Then, before the next checkpoint, the cap sheds c0 (it expires first), c0 comes
    // again, is shed again, and the STS call that took its place expires: the agent's side has room.
    const beforeRestart = [
      redelivered,
      attach('c1', T0 + 2_000),
      attach('c2', T0 + 3_000), // sheds c0
      redelivered, // sheds c1
      coreEvent({ id: 'c-sts', time: T0 + 3_500, action: 'sts:GetSessionToken' }), // sheds c0 again
      coreEvent({ id: 'c-other', time: T0 + 7_000, agent: 'billing' }), // c-sts expires
    ]
    const alert = edgeEvent({ id: 'e1', time: T0 + 1_500 })

    const straight = createCorrelator(config)
    for (const e of beforeRestart) straight.accept(e)
    const expected = straight.accept(alert).correlations
    expect(expected.map((c) => c.core.event_id)).toEqual(['c2'])

    const file = join(tempDir('nerve-checkpoint'), 'c.sqlite')
    const store = createSqliteCheckpointStore(file)
    const first = createCorrelator(config, undefined, { trackChanges: true })
    for (const [offset, e] of beforeRestart.entries()) {
      first.accept(e)
      if (offset === 0 || offset === beforeRestart.length - 1)
        await store.save(0, { offset, changes: first.takeChanges(), snapshot: first.snapshot })
    }
    await store.close()

    const reopened = createSqliteCheckpointStore(file)
    const checkpoint = await reopened.load(0)
    await reopened.close()
    expect(checkpoint?.state.entries.map((e) => e.id)).toEqual(first.snapshot().entries.map((e) => e.id))
    const restarted = createCorrelator(config, checkpoint?.state)
    expect(restarted.accept(alert).correlations).toEqual(expected)
  })

  it('drops what a restart under a smaller cap shed, so raising the cap again brings nothing back', async () => {
    const file = join(tempDir('nerve-checkpoint'), 'c.sqlite')
    const withCap = (max_events_per_agent: number) => ({ ...config, max_events_per_agent })
    const restart = async (cap: number, events: NormalizedEvent[]) => {
      const store = createSqliteCheckpointStore(file)
      const checkpoint = await store.load(0)
      const correlator = createCorrelator(withCap(cap), checkpoint?.state, { trackChanges: true })
      for (const e of events) correlator.accept(e)
      await store.save(0, {
        offset: (checkpoint?.offset ?? -1) + events.length,
        changes: correlator.takeChanges(),
        snapshot: correlator.snapshot,
      })
      await store.close()
      return correlator
    }
    await restart(3, [attach('c0', T0 + 1_000), attach('c1', T0 + 2_000), attach('c2', T0 + 3_000)])
    const smaller = await restart(2, [coreEvent({ id: 'c-other', time: T0 + 4_000, agent: 'billing' })])
    expect(smaller.snapshot().entries.map((e) => e.id)).toEqual(['c1', 'c2', 'c-other'])
    const larger = await restart(3, [])
    expect(larger.snapshot().entries.map((e) => e.id)).toEqual(['c1', 'c2', 'c-other'])
    expect(
      larger.accept(edgeEvent({ id: 'e1', time: T0 + 1_500 })).correlations.map((c) => c.core.event_id),
    ).toEqual(['c1', 'c2'])
  })
})
