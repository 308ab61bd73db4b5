// A protected agent's (or a target-less) suppression is recorded once per incident. When the outbox fails
// to write the batch, the bus delivers it again: the redelivery must still record it, or the store and
// the console never say why the agent was not cut off.
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
      outbox.recordDecisions = (entries) => {
        if (failNextRecord.on) {
          failNextRecord.on = false
          throw new NerveError('STORAGE_FULL', 'database or disk is full', { retriable: true })
        }
        return record(entries)
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
})
