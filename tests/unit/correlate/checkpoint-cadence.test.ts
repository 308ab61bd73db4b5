// The correlate stage saving its checkpoint every so many records or so much time instead of after every
// batch (correlation.checkpoint): correlations are still published by the batch that finds them, the
// bus's commit never passes what a durable checkpoint includes, and a kill -9 anywhere, then a restart,
// loses nothing and yields each correlation id again at most.
import { describe, expect, it } from 'vitest'
import { correlationsTopic, eventsTopic } from '../../../bus/topics.ts'
import { saveDue } from '../../../correlate/checkpoint-cadence.ts'
import type { CheckpointStore } from '../../../correlate/checkpoint-store.ts'
import { createKeyValueCheckpointStore } from '../../../correlate/key-value-checkpoint-store.ts'
import { checkpointKey, startCorrelate } from '../../../correlate/start-correlate.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config, Correlation, NormalizedEvent } from '../../../schemas/types.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import {
  Crash,
  type CrashPlan,
  createMemoryBus,
  createMemoryStorage,
  type MemoryStorage,
} from './memory-bus.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const min = 60_000
const partitions = 2
const agents = ['data-cleaner', 'report-bot', 'etl-runner', 'billing-agent', 'ops-bot', 'ci-runner']

/** Per agent a shell, read-only noise and an IAM write: six shell → IAM pairs over two partitions. */
const input = (): NormalizedEvent[] =>
  agents.flatMap((agent, i) => [
    edgeEvent({ id: `e-shell-${i}`, agent, time: T0 + i * min }),
    coreEvent({ id: `c-noise-${i}`, agent, time: T0 + i * min + 1, action: 's3:GetObject', readOnly: true }),
    coreEvent({ id: `c-attach-${i}`, agent, time: T0 + i * min + 90_000 }),
  ])

const configWith = (checkpoint: Partial<Config['correlation']['checkpoint']>): Config => {
  const defaults = loadConfig()
  return {
    ...defaults,
    correlation: {
      ...defaults.correlation,
      checkpoint: { ...defaults.correlation.checkpoint, ...checkpoint },
    },
  }
}

async function publish(storage: MemoryStorage, events: NormalizedEvent[]) {
  await createMemoryBus(storage, partitions).bus.publish(
    eventsTopic,
    events.map((e) => ({ key: e.agent.id, value: e })),
  )
}

type StageOptions = {
  plan?: CrashPlan
  now?: () => number
  wrap?: (store: CheckpointStore) => CheckpointStore
}

async function startStage(storage: MemoryStorage, config: Config, options: StageOptions = {}) {
  const runtime = createTestRuntime()
  const memory = createMemoryBus(storage, partitions, options.plan)
  const store = createKeyValueCheckpointStore(memory.keyValueLog(), checkpointKey)
  const stage = await startCorrelate(config, {
    bus: memory.bus,
    log: runtime.log,
    metrics: runtime.metrics,
    checkpoints: options.wrap ? options.wrap(store) : store,
    now: options.now,
  })
  return { stage, memory, runtime }
}

const published = (storage: MemoryStorage) =>
  createMemoryBus(storage, partitions)
    .records(correlationsTopic)
    .map((r) => r.value as Correlation)

/** The offset each partition's durable checkpoint includes (-1: none), read from a copy of the storage. */
async function checkpointOffsets(storage: MemoryStorage): Promise<number[]> {
  const copy = structuredClone(storage)
  const store = createKeyValueCheckpointStore(createMemoryBus(copy, partitions).keyValueLog(), checkpointKey)
  const offsets: number[] = []
  for (let p = 0; p < partitions; p++) offsets.push((await store.load(p))?.offset ?? -1)
  return offsets
}

const committed = (storage: MemoryStorage) =>
  storage.committed.get(`${eventsTopic.name}/nerve-correlate`) ?? Array(partitions).fill(0)

describe('saveDue', () => {
  const cadence = { maxRecords: 100, maxIntervalMs: 1_000 }
  it('is due after max_records records or max_interval, whichever comes first, and never with nothing new', () => {
    expect(saveDue(cadence, { offset: 98, saved: -1, savedAt: 0 }, 999)).toBe(false)
    expect(saveDue(cadence, { offset: 99, saved: -1, savedAt: 0 }, 999)).toBe(true)
    expect(saveDue(cadence, { offset: 5, saved: 4, savedAt: 0 }, 1_000)).toBe(true)
    expect(saveDue(cadence, { offset: 4, saved: 4, savedAt: 0 }, 1_000_000)).toBe(false)
  })
  it('is due at every batch with max_records 1 or max_interval 0', () => {
    expect(saveDue({ maxRecords: 1, maxIntervalMs: 1_000 }, { offset: 5, saved: 4, savedAt: 0 }, 0)).toBe(
      true,
    )
    expect(saveDue({ maxRecords: 100, maxIntervalMs: 0 }, { offset: 5, saved: 4, savedAt: 0 }, 0)).toBe(true)
  })
})

describe('startCorrelate with a checkpoint every few records', () => {
  it('publishes each correlation with the batch that finds it, while the commit waits for a checkpoint', async () => {
    const storage = createMemoryStorage()
    await publish(storage, input())
    // The clock never moves and max_records is out of reach: nothing is saved before close.
    const first = await startStage(storage, configWith({ max_records: 1_000 }), { now: () => 0 })
    await first.memory.drain()
    expect(published(storage)).toHaveLength(6)
    expect(await checkpointOffsets(storage)).toEqual([-1, -1])
    expect(committed(storage)).toEqual([0, 0])
    // Stopping saves every partition, and the bus commits up to those checkpoints before it stops.
    await first.stage.close()
    const saved = await checkpointOffsets(storage)
    expect(saved.every((o) => o >= 0)).toBe(true)
    expect(committed(storage)).toEqual(saved.map((o) => o + 1))
    // A restart reads nothing again, and publishes nothing twice.
    const second = await startStage(storage, configWith({ max_records: 1_000 }), { now: () => 0 })
    await second.memory.drain()
    expect(published(storage)).toHaveLength(6)
    expect(await second.runtime.metricValue('nerve_correlate_replayed_records_skipped_total')).toBe(0)
    await second.stage.close()
  })

  it('a kill -9 at any durable step never leaves the commit past a checkpoint, and a restart loses nothing', async () => {
    const config = configWith({ max_records: 4 })
    const clean = createMemoryStorage()
    await publish(clean, input())
    const reference = await startStage(clean, config, { now: () => 0 })
    await reference.memory.drain()
    const expected = new Map(published(clean).map((c) => [c.id, JSON.stringify(c)]))
    expect(expected.size).toBe(6)
    const totalSteps = reference.memory.steps()
    expect(totalSteps).toBeGreaterThan(10)

    for (let crashAt = 0; crashAt < totalSteps; crashAt++) {
      for (const after of [false, true]) {
        const what = `crash at ${crashAt} after=${after}`
        const storage = createMemoryStorage()
        await publish(storage, input())
        const dying = await startStage(storage, config, { plan: { crashAt, after }, now: () => 0 })
        await expect(dying.memory.drain()).rejects.toBeInstanceOf(Crash)
        const saved = await checkpointOffsets(storage)
        committed(storage).forEach((next, p) => {
          expect(next, `${what}, partition ${p}`).toBeLessThanOrEqual((saved[p] as number) + 1)
        })
        const restarted = await startStage(storage, config, { now: () => 0 })
        await restarted.memory.drain()
        const got = published(storage)
        expect(new Set(got.map((c) => c.id)), what).toEqual(new Set(expected.keys()))
        for (const c of got) expect(JSON.stringify(c), what).toBe(expected.get(c.id))
      }
    }
  })

  it('saves what waits once max_interval has passed while the stream pauses', async () => {
    const storage = createMemoryStorage()
    await publish(storage, input())
    const { stage, memory } = await startStage(storage, configWith({ max_records: 1_000, max_interval: 20 }))
    await memory.drain()
    const last = Array.from(
      { length: partitions },
      (_, p) => (storage.logs.get(eventsTopic.name)?.[p]?.length ?? 0) - 1,
    )
    const reached = async () => {
      const saved = await checkpointOffsets(storage)
      return saved.every((o, p) => o === last[p])
    }
    let done = false
    await waitFor(
      async () => {
        done = await reached()
        return done
      },
      { what: 'every partition saved by the timer' },
    )
    expect(done).toBe(true)
    await stage.close()
  })

  it('after a save that failed outside a batch, the next batch fails and the records since the last checkpoint come again', async () => {
    const storage = createMemoryStorage()
    const events = input()
    const shells = events.filter((e) => e.id.startsWith('e-shell'))
    const noise = events.filter((e) => e.id.startsWith('c-noise'))
    const attaches = events.filter((e) => e.id.startsWith('c-attach'))
    await publish(storage, shells)
    const failing = { next: false }
    const wrap = (store: CheckpointStore): CheckpointStore => ({
      ...store,
      save: async (partition, update) => {
        if (failing.next) {
          failing.next = false
          throw new Error('disk full')
        }
        return store.save(partition, update)
      },
    })
    const config = configWith({ max_records: 1_000, max_interval: 20 })
    // The stage's clock stands still while the shells are handled, so no save falls due inside their
    // batches (a loaded machine took over 20 ms between the restore and a batch), then moves past
    // max_interval: the save that fails is the timer's, outside any batch.
    const clock = { now: 0 }
    const first = await startStage(storage, config, { wrap, now: () => clock.now })
    failing.next = true
    await first.memory.drain()
    clock.now = 1_000
    await waitFor(
      async () =>
        (await first.runtime.metricValue('nerve_component_errors_total', { component: 'correlator' })) > 0,
      { what: 'the failed save' },
    )
    // The partition whose save failed refuses its next batch; the bus then delivers it from its commit.
    await publish(storage, noise)
    await expect(first.memory.drain()).rejects.toThrow('checkpoint failed')
    await first.memory.drain()
    await first.stage.close()
    // Its shells must be in the checkpoint: the IAM writes after the restart pair with every one.
    await publish(storage, attaches)
    const second = await startStage(storage, config)
    await second.memory.drain()
    expect(new Set(published(storage).map((c) => c.id)).size).toBe(6)
    await second.stage.close()
  })
})
