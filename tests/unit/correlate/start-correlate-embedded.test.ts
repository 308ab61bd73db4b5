// The correlate stage on the real embedded bus (SQLite on disk, nothing else running): correlations reach
// the correlations topic, and state survives closing and reopening the bus and the stage.
import { describe, expect, it } from 'vitest'
import type { DeliveredRecord } from '../../../bus/bus.ts'
import { createEmbeddedBus } from '../../../bus/embedded-bus.ts'
import { correlationsTopic, eventsTopic } from '../../../bus/topics.ts'
import { startCorrelate } from '../../../correlate/start-correlate.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Correlation, NormalizedEvent } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const config = loadConfig()

describe('startCorrelate on the embedded bus', () => {
  it('joins across a restart of the bus and the stage', async () => {
    const dataDir = tempDir('nerve-correlate-embedded')
    const open = async () => {
      const rt = createTestRuntime()
      const bus = createEmbeddedBus({ dataDir, partitions: 4, retentionMs: 86_400_000, maxBatch: 100 }, rt)
      const stage = await startCorrelate(config, { bus, log: rt.log, metrics: rt.metrics, dataDir })
      const seen: Correlation[] = []
      const sub = await bus.subscribe(
        correlationsTopic,
        'test-reader',
        async (batch: readonly DeliveredRecord<Correlation>[]) => {
          seen.push(...batch.map((r) => r.value))
        },
      )
      const publish = (events: NormalizedEvent[]) =>
        bus.publish(
          eventsTopic,
          events.map((e) => ({ key: e.agent.id, value: e })),
        )
      const close = async () => {
        await sub.stop()
        await stage.close()
        await bus.close()
      }
      return { seen, publish, close }
    }

    const first = await open()
    await first.publish([
      edgeEvent({ id: 'e-a', agent: 'data-cleaner', time: T0 }),
      edgeEvent({ id: 'e-b', agent: 'report-bot', time: T0 + 1_000 }),
      coreEvent({ id: 'c-a', agent: 'data-cleaner', time: T0 + 60_000 }),
    ])
    await waitFor(() => first.seen.length === 1, { what: 'the first correlation' })
    await first.close()

    const second = await open()
    await second.publish([coreEvent({ id: 'c-b', agent: 'report-bot', time: T0 + 61_000 })])
    const found = await waitFor(() => second.seen.find((c) => c.core.event_id === 'c-b'), {
      what: 'a correlation with an edge buffered before the restart',
    })
    expect(found.edge.event_id).toBe('e-b')
    expect(second.seen.map((c) => c.core.event_id)).toEqual(['c-b'])
    await second.close()
  })
})
