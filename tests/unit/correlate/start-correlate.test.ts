import { describe, expect, it } from 'vitest'
import { correlationsTopic, eventsTopic, lateEventsTopic } from '../../../bus/topics.ts'
import { createKeyValueCheckpointStore } from '../../../correlate/key-value-checkpoint-store.ts'
import { checkpointKey, correlateGroup, startCorrelate } from '../../../correlate/start-correlate.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config, Correlation, NormalizedEvent } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'
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
const config: Config = loadConfig()

/** Four agents over two partitions: shells, IAM changes, secrets reads, noise, a redelivery, a late core. */
function input(): NormalizedEvent[] {
  const events: NormalizedEvent[] = []
  for (const [i, agent] of ['data-cleaner', 'report-bot', 'etl-runner', 'billing-agent'].entries()) {
    events.push(edgeEvent({ id: `e-shell-${i}`, agent, time: T0 + i * min }))
    events.push(
      coreEvent({
        id: `c-noise-${i}`,
        agent,
        time: T0 + i * min + 1,
        action: 's3:GetObject',
        readOnly: true,
      }),
    )
    events.push(coreEvent({ id: `c-attach-${i}`, agent, time: T0 + i * min + 90_000 }))
    events.push(
      edgeEvent({
        id: `e-find-${i}`,
        agent,
        time: T0 + i * min + 100_000,
        rule: 'Find AWS Credentials',
        priority: 'warning',
      }),
    )
    events.push(
      coreEvent({
        id: `c-secret-${i}`,
        agent,
        time: T0 + i * min + 120_000,
        action: 'secretsmanager:GetSecretValue',
        readOnly: true,
      }),
    )
    events.push(coreEvent({ id: `c-attach-${i}`, agent, time: T0 + i * min + 90_000 }))
  }
  events.push(edgeEvent({ id: 'e-far', agent: 'data-cleaner', time: T0 + 3 * 3_600_000 }))
  events.push(coreEvent({ id: 'c-late', agent: 'data-cleaner', time: T0 }))
  return events
}

async function publishInput(storage: MemoryStorage) {
  const { bus } = createMemoryBus(storage, 2)
  await bus.publish(
    eventsTopic,
    input().map((e) => ({ key: e.agent.id, value: e })),
  )
}

/** Starts the stage on `storage`'s bus (two partitions), its checkpoints on the bus's key-value log. */
async function startStage(
  storage: MemoryStorage,
  plan?: CrashPlan,
  options: { config?: Config; now?: () => number; snapshotAfterBytes?: number } = {},
) {
  const runtime = createTestRuntime()
  const memory = createMemoryBus(storage, 2, plan)
  const stage = await startCorrelate(options.config ?? config, {
    bus: memory.bus,
    log: runtime.log,
    metrics: runtime.metrics,
    checkpoints: createKeyValueCheckpointStore(memory.keyValueLog(), checkpointKey, {
      snapshotAfterBytes: options.snapshotAfterBytes,
    }),
    now: options.now,
  })
  return { stage, memory, runtime }
}

async function runStage(storage: MemoryStorage, plan?: CrashPlan, snapshotAfterBytes?: number) {
  const started = await startStage(storage, plan, { snapshotAfterBytes })
  await started.memory.drain()
  return started
}

const published = (storage: MemoryStorage) =>
  createMemoryBus(storage, 2)
    .records(correlationsTopic)
    .map((r) => r.value as Correlation)

/**
 * For each of a clean run's `steps` durable steps, before and after it takes effect: `run` on a fresh copy
 * of the input, killed at that step, then run again on what the kill left. Every restart publishes the
 * clean run's correlations (`expected`) byte for byte, and no other id. `killed` looks at what a kill left,
 * `restarted` at what the restart left.
 */
async function expectEveryKillRecovered(
  run: (storage: MemoryStorage, plan?: CrashPlan) => Promise<unknown>,
  expected: readonly Correlation[],
  steps: number,
  checks: {
    killed?(storage: MemoryStorage, at: string): Promise<void>
    restarted?(storage: MemoryStorage): void
  } = {},
) {
  const byId = new Map(expected.map((c) => [c.id, JSON.stringify(c)]))
  for (let crashAt = 0; crashAt < steps; crashAt++) {
    for (const after of [false, true]) {
      const at = `crash at ${crashAt} after=${after}`
      const storage = createMemoryStorage()
      await publishInput(storage)
      await expect(run(storage, { crashAt, after })).rejects.toBeInstanceOf(Crash)
      await checks.killed?.(storage, at)
      await run(storage)
      const got = published(storage)
      expect(new Set(got.map((c) => c.id)), at).toEqual(new Set(byId.keys()))
      for (const c of got) expect(JSON.stringify(c)).toBe(byId.get(c.id))
      checks.restarted?.(storage)
    }
  }
}

describe('startCorrelate', () => {
  it('counts and names a copy of an event id that differs from the kept first one', async () => {
    const storage = createMemoryStorage()
    const { bus } = createMemoryBus(storage, 2)
    // A forged copy of the IAM write's eventID, a second earlier, then CloudTrail's real record; the id
    // carries an escape sequence, as one written into a forged log file may.
    const id = '5a5a5a5a-0000-4000-8000-\u001b[2J'
    const events = [
      edgeEvent({ id: 'e-shell', agent: 'data-cleaner', time: T0 }),
      coreEvent({ id, agent: 'data-cleaner', time: T0 + 59_000, errorCode: 'AccessDenied' }),
      coreEvent({ id, agent: 'data-cleaner', time: T0 + 60_000 }),
    ]
    await bus.publish(
      eventsTopic,
      events.map((e) => ({ key: e.agent.id, value: e })),
    )
    const { stage, runtime } = await runStage(storage)
    expect(await runtime.metricValue('nerve_correlate_duplicate_events_total')).toBe(1)
    expect(await runtime.metricValue('nerve_correlate_conflicting_duplicates_total')).toBe(1)
    const [warning, ...more] = runtime.logs.filter((l) => /Copies of event ids differ/.test(l.msg))
    expect(more).toEqual([])
    expect(warning).toMatchObject({
      level: 'warn',
      count: 1,
      event_ids: ['5a5a5a5a-0000-4000-8000-\\x1b[2J'],
    })
    await stage.close()
  })

  it('publishes correlations keyed by agent and late events, and exports its gauges', async () => {
    const storage = createMemoryStorage()
    await publishInput(storage)
    const { stage, memory, runtime } = await runStage(storage)
    const correlations = memory.records(correlationsTopic)
    expect(correlations.map((r) => r.value.rule.id).sort()).toEqual([
      ...Array(4).fill('credential-search-then-secret-access'),
      ...Array(4).fill('shell-then-credential-access'),
      ...Array(4).fill('shell-then-iam-privilege-change'),
    ])
    for (const r of correlations) expect(r.key).toBe(r.value.agent.id)
    const late = memory.records(lateEventsTopic)
    expect(late.map((r) => r.value.event.id)).toEqual(['c-late'])
    expect(stage.readiness.correlator?.()).toEqual({ ok: true })
    expect(await runtime.metricValue('nerve_correlate_late_events_total', { side: 'core' })).toBe(1)
    expect(await runtime.metricValue('nerve_correlate_duplicate_events_total')).toBe(4)
    // Byte-for-byte redeliveries: none conflicts with its first copy.
    expect(await runtime.metricValue('nerve_correlate_conflicting_duplicates_total')).toBe(0)
    expect(runtime.logs.filter((l) => /Copies of event ids differ/.test(l.msg))).toEqual([])
    expect(await runtime.metricValue('nerve_correlate_correlations_total')).toBe(12)
    expect(await runtime.metricValue('nerve_correlate_buffered_events')).toBeGreaterThan(0)
    expect(
      await runtime.metricValue('nerve_component_received_events_total', { component: 'correlator' }),
    ).toBe(input().length)
    const text = await runtime.metrics.render()
    expect(text).toContain('nerve_correlate_stream_lag_seconds_bucket{le="0",side="core"}')
    expect(text).toContain('nerve_correlate_overflow_events_total{reason="agent_cap"} 0')
    await stage.close()
    expect(stage.readiness.correlator?.()).toMatchObject({ ok: false })
  })

  // snapshotAfterBytes 0: a snapshot every few batches, so crashes also cut snapshots short.
  for (const snapshotAfterBytes of [undefined, 0]) {
    it(`a kill -9 at any durable step, then a restart, yields the same correlations without new ids (snapshots after ${snapshotAfterBytes ?? 'the default'} bytes)`, async () => {
      const clean = createMemoryStorage()
      await publishInput(clean)
      const { memory } = await runStage(clean, undefined, snapshotAfterBytes)
      const totalSteps = memory.steps()
      expect(totalSteps).toBeGreaterThan(10)
      await expectEveryKillRecovered(
        (storage, plan) => runStage(storage, plan, snapshotAfterBytes),
        published(clean),
        totalSteps,
      )
    })
  }

  it('a kill -9 at any durable step of a quiet stream’s timer saves and their commits, then a restart, yields the same correlations and commits every record', async () => {
    // Nothing is saved in a batch (max_records out of reach, the stage's clock stands still); once the
    // stream is quiet the clock moves, and the timer saves each partition and commits it outside a batch.
    const quiet: Config = {
      ...config,
      correlation: { ...config.correlation, checkpoint: { max_records: 1_000_000, max_interval: 5 } },
    }
    const committedToEnd = (storage: MemoryStorage) => {
      const committed = storage.committed.get(`${eventsTopic.name}/${correlateGroup}`)
      const ends = storage.logs.get(eventsTopic.name)?.map((records) => records.length)
      return ends?.every((end, p) => committed?.[p] === end) ?? false
    }
    const runQuiet = async (storage: MemoryStorage, plan?: CrashPlan) => {
      let time = 0
      const { stage, memory } = await startStage(storage, plan, { config: quiet, now: () => time })
      try {
        await memory.drain()
        time = 10
        await waitFor(() => memory.dead() || committedToEnd(storage), { what: 'the timer’s commits' })
        if (memory.dead()) throw new Crash('killed during a timer save or its commit')
        return memory
      } finally {
        await stage.close().catch(() => undefined)
      }
    }

    const clean = createMemoryStorage()
    await publishInput(clean)
    const memory = await runQuiet(clean)
    await expectEveryKillRecovered(runQuiet, published(clean), memory.steps(), {
      restarted: (storage) => expect(committedToEnd(storage)).toBe(true),
    })
  })

  it('a kill -9 at any durable step of a clean stop’s final saves and commits, then a restart, yields the same correlations and never a commit past a checkpoint', async () => {
    // Nothing is saved in a batch (max_records out of reach, the clock stands still): the stop saves
    // every partition after its subscription drained, and commits those saves before it leaves.
    const stopping: Config = {
      ...config,
      correlation: { ...config.correlation, checkpoint: { max_records: 1_000_000, max_interval: 600_000 } },
    }
    const runStopping = async (storage: MemoryStorage, plan?: CrashPlan) => {
      const { stage, memory } = await startStage(storage, plan, { config: stopping, now: () => 0 })
      try {
        await memory.drain()
      } finally {
        await stage.close().catch(() => undefined)
      }
      if (memory.dead()) throw new Crash('killed during the stop')
      return memory
    }
    const committed = (storage: MemoryStorage) =>
      storage.committed.get(`${eventsTopic.name}/${correlateGroup}`) ?? [0, 0]
    const checkpointed = async (storage: MemoryStorage) => {
      const store = createKeyValueCheckpointStore(createMemoryBus(storage, 2).keyValueLog(), checkpointKey)
      return Promise.all([0, 1].map(async (p) => ((await store.load(p))?.offset ?? -1) + 1))
    }

    const clean = createMemoryStorage()
    await publishInput(clean)
    const memory = await runStopping(clean)
    const ends = clean.logs.get(eventsTopic.name)?.map((records) => records.length)
    expect(committed(clean)).toEqual(ends)
    await expectEveryKillRecovered(runStopping, published(clean), memory.steps(), {
      killed: async (storage, at) => {
        const bounds = await checkpointed(storage)
        committed(storage).forEach((offset, p) => {
          expect(offset, at).toBeLessThanOrEqual(bounds[p] ?? 0)
        })
      },
      restarted: (storage) => expect(committed(storage)).toEqual(ends),
    })
  })

  it('restores from its SQLite checkpoint and skips records it already processed', async () => {
    const reference = createMemoryStorage()
    await publishInput(reference)
    await runStage(reference)
    const expected = published(reference).map((c) => JSON.stringify(c))

    const storage = createMemoryStorage()
    const dataDir = tempDir('nerve-correlate')
    const events = input()
    const half = Math.floor(events.length / 2)
    const publish = (list: NormalizedEvent[]) =>
      createMemoryBus(storage, 2).bus.publish(
        eventsTopic,
        list.map((e) => ({ key: e.agent.id, value: e })),
      )
    const start = async () => {
      const runtime = createTestRuntime()
      const memory = createMemoryBus(storage, 2)
      const stage = await startCorrelate(config, {
        bus: memory.bus,
        log: runtime.log,
        metrics: runtime.metrics,
        dataDir,
      })
      await memory.drain()
      await stage.close()
      return runtime
    }
    await publish(events.slice(0, half))
    await start()
    storage.committed.clear() // the bus lost its commits: everything is delivered again
    await publish(events.slice(half))
    const second = await start()
    expect(await second.metricValue('nerve_correlate_replayed_records_skipped_total')).toBe(half)
    expect(
      published(storage)
        .map((c) => JSON.stringify(c))
        .sort(),
    ).toEqual(expected.sort())
  })

  it("logs a failed checkpoint save with SQLite's code, so a locked checkpoint file shows as one", async () => {
    const storage = createMemoryStorage()
    await publishInput(storage)
    const runtime = createTestRuntime()
    const memory = createMemoryBus(storage, 2)
    const busy = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })
    const stage = await startCorrelate(config, {
      bus: memory.bus,
      log: runtime.log,
      metrics: runtime.metrics,
      checkpoints: {
        load: async () => undefined,
        save: async () => {
          throw busy
        },
        close: async () => {},
      },
    })
    const failedSave = () =>
      runtime.logs.find((l) => l.msg.startsWith('Saving a correlator checkpoint failed'))
    try {
      await memory.drain().catch(() => {}) // delivered; the save comes on its 1 s timer
      await waitFor(() => failedSave() !== undefined, { what: 'the failed save logged' })
      const line = failedSave()
      expect(line).toMatchObject({ level: 'warn', error_code: 'INTERNAL', sqlite_code: 'SQLITE_BUSY' })
    } finally {
      await stage.close().catch(() => {})
    }
  })
})
