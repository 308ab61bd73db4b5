// A protected agent's (or a target-less) suppression is recorded once per incident. When the outbox fails
// to write the batch, the bus delivers it again: the redelivery must still record it, or the store and
// the console never say why the agent was not cut off. And the policy, rebuilt after the failure, must
// still know the merges it had learnt from earlier batches.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { revokeOutcomesTopic } from '../../../bus/topics.ts'
import { NerveError } from '../../../runtime/errors.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { RevokeOutcome } from '../../../schemas/types.ts'
import { createRevokeDispatcher } from '../../../sinks/revoke-webhook-dispatcher.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { createMemoryBus } from './memory-bus.ts'

const failNextRecord = { on: false }
vi.mock('../../../sinks/revoke-outbox.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../sinks/revoke-outbox.ts')>()
  return {
    ...real,
    openRevokeOutbox: (dir: string) => {
      const outbox = real.openRevokeOutbox(dir)
      const record = outbox.recordDecisions.bind(outbox)
      outbox.recordDecisions = (...args) => {
        if (failNextRecord.on) {
          failNextRecord.on = false
          throw new NerveError('STORAGE_FULL', 'database or disk is full', { retriable: true })
        }
        return record(...args)
      }
      return outbox
    },
  }
})

const open: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const x of open.splice(0)) await x.close()
})

describe('a failed outbox write', () => {
  it('records the protected-agent suppression on the redelivery', async () => {
    const rt = createTestRuntime({ now: () => Date.UTC(2026, 10, 25, 16, 5) })
    const bus = createMemoryBus()
    const defaults = loadConfig()
    const d = createRevokeDispatcher(
      {
        data_dir: tempDir('nerve-revoke-fail'),
        agents: [{ id: 'data-cleaner', protected: true, match: {} }],
        revoke: {
          ...defaults.revoke,
          webhooks: [{ url: 'http://127.0.0.1:9/', timeout: 5000, concurrency: 1 }],
        },
      },
      { bus, log: rt.log, metrics: rt.metrics, now: () => Date.UTC(2026, 10, 25, 16, 5) },
    )
    open.push(d)
    d.startDelivering()
    const batch = [makeCorrelation(0, { incident: { id: 'inc-data-cleaner-1' } })]
    failNextRecord.on = true
    await expect(d.handle(batch)).rejects.toThrow(/disk is full/)
    await d.handle(batch)
    await waitFor(() => bus.published<RevokeOutcome>(revokeOutcomesTopic).length > 0)
    const outcomes = bus.published<RevokeOutcome>(revokeOutcomesTopic)
    expect(outcomes.map((o) => `${o.status}:${o.reason}`)).toEqual(['suppressed:protected_agent'])
  })

  it('still knows, on the redelivery, that an incident which absorbed a revoked one is revoked', async () => {
    const at = Date.UTC(2026, 10, 25, 16, 5)
    const rt = createTestRuntime({ now: () => at })
    const bus = createMemoryBus()
    const defaults = loadConfig()
    const hour = 3_600_000
    const d = createRevokeDispatcher(
      {
        data_dir: tempDir('nerve-revoke-fail'),
        agents: [],
        revoke: {
          ...defaults.revoke,
          dry_run: true,
          rate_limit: { per_agent: { count: 100, per: hour }, global: { count: 100, per: hour } },
        },
      },
      { bus, log: rt.log, metrics: rt.metrics, now: () => at },
    )
    open.push(d)
    d.startDelivering()
    await d.handle([makeCorrelation(0, { incident: { id: 'inc-a' } })])
    // inc-b absorbs the revoked inc-a: only this correlation says so.
    await d.handle([makeCorrelation(1, { incident: { id: 'inc-b', merged: ['inc-a'] } })])
    // A later correlation of inc-b, in a batch whose write fails (another agent's revoke has a row).
    const batch = [
      makeCorrelation(2, { incident: { id: 'inc-b' } }),
      makeCorrelation(3, {
        incident: { id: 'inc-x' },
        agent: { id: 'other', resolved_by: 'registry', identity: {} },
      }),
    ]
    failNextRecord.on = true
    await expect(d.handle(batch)).rejects.toThrow(/disk is full/)
    await d.handle(batch)
    // inc-x's row and a wrong one of inc-b would be written, and published, together.
    await waitFor(() => bus.published<RevokeOutcome>(revokeOutcomesTopic).length >= 2)
    const outcomes = bus.published<RevokeOutcome>(revokeOutcomesTopic)
    // One revoke of inc-a (and so of inc-b) and one of inc-x: none of inc-b again.
    expect(outcomes.map((o) => `${o.incident_id}:${o.status}`).sort()).toEqual([
      'inc-a:dry_run',
      'inc-x:dry_run',
    ])
  })
})
