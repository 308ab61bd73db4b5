// The correlate stage on the real embedded bus (SQLite on disk, nothing else running): correlations reach
// the correlations topic, and state survives closing and reopening the bus and the stage, or a stop between
// two checkpoints (the records since the last one are handled again, the store keeps each correlation once).
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { DeliveredRecord } from '../../../bus/bus.ts'
import { createEmbeddedBus } from '../../../bus/embedded-bus.ts'
import { correlationsTopic, eventsTopic } from '../../../bus/topics.ts'
import { createSqliteCheckpointStore } from '../../../correlate/checkpoint-store.ts'
import { startCorrelate } from '../../../correlate/start-correlate.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config, Correlation, NormalizedEvent } from '../../../schemas/types.ts'
import { createCorrelationStore } from '../../../sinks/correlation-store.ts'
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

  it('after a stop between checkpoints, handles the records since the last one again, and the store keeps each correlation once', async () => {
    const dataDir = tempDir('nerve-correlate-embedded')
    // No save before the stage stops: max_records and max_interval out of reach.
    const rare: Config = {
      ...config,
      correlation: { ...config.correlation, checkpoint: { max_records: 100_000, max_interval: 3_600_000 } },
    }
    const rt = createTestRuntime()
    const store = createCorrelationStore({ data_dir: dataDir }, { metrics: rt.metrics })
    const stored = () => store.total('correlations', { limit: 100, text: {} })
    const open = async () => {
      const run = createTestRuntime()
      const bus = createEmbeddedBus({ dataDir, partitions: 4, retentionMs: 86_400_000, maxBatch: 2 }, run)
      const checkpoints = createSqliteCheckpointStore(join(dataDir, 'correlate-checkpoints.sqlite'))
      const stage = await startCorrelate(rare, {
        bus,
        log: run.log,
        metrics: run.metrics,
        dataDir,
        checkpoints,
      })
      await bus.subscribe(
        correlationsTopic,
        'nerve-store',
        async (batch: readonly DeliveredRecord<Correlation>[]) => {
          store.writeCorrelations(batch.map((r) => r.value))
        },
      )
      return { bus, stage, checkpoints, run }
    }
    const agents = ['data-cleaner', 'report-bot', 'etl-runner']
    const pairs = (from: number) =>
      agents.flatMap((agent, i) => [
        edgeEvent({ id: `e-${from + i}`, agent, time: T0 + (from + i) * 60_000 }),
        coreEvent({ id: `c-${from + i}`, agent, time: T0 + (from + i) * 60_000 + 30_000 }),
      ])
    const publish = (bus: ReturnType<typeof createEmbeddedBus>, events: NormalizedEvent[]) =>
      bus.publish(
        eventsTopic,
        events.map((e) => ({ key: e.agent.id, value: e })),
      )

    const first = await open()
    await publish(first.bus, pairs(0))
    await waitFor(() => stored() === 3, { what: 'the first three correlations in the store' })
    // Stopped as a crash would leave it: the bus stops (committing only up to the checkpoints, of which
    // there are none yet) and the stage never saves.
    await first.bus.close()
    await first.checkpoints.close()
    for (let p = 0; p < 4; p++) expect(await first.checkpoints.load(p).catch(() => undefined)).toBeUndefined()

    const second = await open()
    await publish(second.bus, pairs(100)) // far past the window: pairs of their own only
    await waitFor(() => stored() === 6, { what: 'the next three correlations in the store' })
    // The first three were found again from the records the bus delivered again, with the same ids.
    expect(await second.run.metricValue('nerve_correlate_correlations_total')).toBe(6)
    await second.stage.close()
    await second.bus.close()
    expect(stored()).toBe(6)
    store.close()
  })
})
