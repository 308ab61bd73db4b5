// On Kafka a partition's new owner starts as soon as the group has rebalanced; the old owner's onRevoke
// runs only then (kafkajs has no hook before the handover). A checkpoint the old owner writes from
// onRevoke therefore lands beside the new owner's, under the same delta numbers of the shared log, and a
// restore then mixes the two: what the new owner buffered in between is gone. The same holds for a
// timer-driven save in flight when the rebalance begins: it is fenced by Subscription.owns before each
// write of the log.
import { describe, expect, it } from 'vitest'
import type { Bus, DeliveredRecord, Handled, SubscribeOptions } from '../../../bus/bus.ts'
import { createKeyValueCheckpointStore } from '../../../correlate/key-value-checkpoint-store.ts'
import { checkpointKey, startCorrelate } from '../../../correlate/start-correlate.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config, Correlation, NormalizedEvent } from '../../../schemas/types.ts'
import { gate } from '../../helpers/gate.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { createMemoryBus, createMemoryStorage, type MemoryStorage } from './memory-bus.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const min = 60_000

type Handle = (batch: readonly DeliveredRecord<NormalizedEvent>[]) => Promise<Handled>

/** A bus driven by hand: the test hands batches over and runs the rebalance hooks itself. */
function handDrivenBus() {
  const correlations: Correlation[] = []
  let handle: Handle | undefined
  let options: SubscribeOptions = {}
  const ownership = { owned: true }
  const bus = {
    publish: async (topic: { name: string }, records: readonly { value: unknown }[]) => {
      if (topic.name.includes('correlations'))
        for (const r of records) correlations.push(r.value as Correlation)
    },
    subscribe: async (_topic: unknown, _group: string, h: Handle, o: SubscribeOptions = {}) => {
      handle = h
      options = o
      return { stop: async () => {}, owns: () => ownership.owned }
    },
  } as unknown as Bus
  return {
    bus,
    ownership,
    correlations,
    deliver: (records: DeliveredRecord<NormalizedEvent>[]) => (handle as Handle)(records),
    assign: (p: number[]) => options.onAssign?.(p),
    revoke: (p: number[]) => options.onRevoke?.(p),
  }
}

const configWith = (max_records: number): Config => {
  const defaults = loadConfig()
  return {
    ...defaults,
    correlation: {
      ...defaults.correlation,
      checkpoint: { max_records, max_interval: 3_600_000 },
    },
  }
}

async function instance(storage: MemoryStorage, config: Config) {
  const runtime = createTestRuntime()
  const hand = handDrivenBus()
  const log = createMemoryBus(storage, 1).keyValueLog()
  const stage = await startCorrelate(config, {
    bus: hand.bus,
    log: runtime.log,
    metrics: runtime.metrics,
    checkpoints: createKeyValueCheckpointStore(log as never, checkpointKey),
    now: () => 0,
  })
  return { stage, ...hand }
}

const at = (offset: number, value: NormalizedEvent): DeliveredRecord<NormalizedEvent> => ({
  key: value.agent.id,
  value,
  partition: 0,
  offset,
})

/**
 * A third instance restoring partition 0 from the shared log, then given the IAM call that completes
 * report-bot's pair: the pair forms only if its shell alert (offset 1) came through in the log.
 */
async function restoredInstance(storage: MemoryStorage) {
  const third = await instance(storage, configWith(1))
  await third.assign([0])
  await third.deliver([at(3, coreEvent({ id: 'c-attach-b', agent: 'report-bot', time: T0 + min + 90_000 }))])
  return third
}

describe('a partition moving to another instance between two checkpoints', () => {
  it('leaves a checkpoint the next restore can pair from: the old owner writes none after the handover', async () => {
    const storage = createMemoryStorage()
    const events = [
      at(0, edgeEvent({ id: 'e-shell-a', agent: 'data-cleaner', time: T0 })),
      at(1, edgeEvent({ id: 'e-shell-b', agent: 'report-bot', time: T0 + min })),
      at(2, edgeEvent({ id: 'e-shell-c', agent: 'etl-runner', time: T0 + 2 * min })),
    ]
    // The old owner handles offset 0 and saves nothing yet (max_records out of reach).
    const old = await instance(storage, configWith(1_000))
    await old.assign([0])
    await old.deliver(events.slice(0, 1))
    // The rebalance: the new owner restores (nothing saved) and reads from the commit, saving every batch.
    const next = await instance(storage, configWith(1))
    await next.assign([0])
    await next.deliver(events.slice(0, 2))
    // The old owner's onRevoke runs only now, after the handover.
    await old.revoke([0])
    await next.deliver(events.slice(2, 3))
    // A third instance restores the partition from the shared log: the shell at offset 1 must be there.
    const third = await restoredInstance(storage)
    expect(third.correlations.map((c) => c.agent.id)).toEqual(['report-bot'])
    await Promise.all([old.stage.close(), next.stage.close(), third.stage.close()])
  })

  it('writes nothing more of a timer-driven save once the rebalance has begun, though the save started before', async () => {
    const storage = createMemoryStorage()
    const events = [
      at(0, edgeEvent({ id: 'e-shell-a', agent: 'data-cleaner', time: T0 })),
      at(1, edgeEvent({ id: 'e-shell-b', agent: 'report-bot', time: T0 + min })),
      at(2, edgeEvent({ id: 'e-shell-c', agent: 'etl-runner', time: T0 + 2 * min })),
    ]
    // The old owner saves on its timer only (max_interval 5 ms), in pieces (a delta longer than 64
    // characters), and its log holds every write after the first until the test lets it go on.
    const runtime = createTestRuntime()
    const hand = handDrivenBus()
    const log = createMemoryBus(storage, 1).keyValueLog()
    let writes = 0
    const { held, release } = gate()
    const gated = {
      ...log,
      put: async (key: string, value: unknown) => {
        if (writes++ > 0) await held
        return log.put(key, value as never)
      },
      putMany: async (values: readonly (readonly [string, unknown])[]) => {
        if (writes++ > 0) await held
        return log.putMany(values as never)
      },
    }
    const config = configWith(1_000)
    // The old owner's clock stands still until its batch is handled: were the batch to find a save due
    // (5 ms after the restore, easily passed on a loaded machine), the batch itself would save, wait on
    // the held log and never return. Moved on after it, the timer's next look finds the save due.
    let clock = Date.now()
    const oldStage = await startCorrelate(
      {
        ...config,
        correlation: { ...config.correlation, checkpoint: { max_records: 1_000, max_interval: 5 } },
      },
      {
        bus: hand.bus,
        log: runtime.log,
        metrics: runtime.metrics,
        checkpoints: createKeyValueCheckpointStore(gated as never, checkpointKey, { deltaPartChars: 64 }),
        now: () => clock,
      },
    )
    await hand.assign([0])
    await hand.deliver(events.slice(0, 1))
    clock += 10
    // The timer's save has written the delta's pieces and waits to write the head naming them.
    await waitFor(() => writes >= 2, { what: 'the timer-driven save in flight' })
    // The rebalance begins: the partition is no longer surely the old owner's. The new owner restores
    // (the pieces without a head are an unfinished delta: deleted) and saves delta 1 of its own.
    hand.ownership.owned = false
    const next = await instance(storage, configWith(1))
    await next.assign([0])
    await next.deliver(events.slice(0, 2))
    release()
    // The old save ends: fenced (it writes nothing more), or, unfenced, writing its head over the new one's.
    await waitFor(() => writes >= 3 || runtime.logs.some((l) => l.msg?.includes('new owner saves it')), {
      what: 'the old save to end',
    })
    await new Promise((resolve) => setTimeout(resolve, 20))
    await hand.revoke([0])
    await next.deliver(events.slice(2, 3))
    const third = await restoredInstance(storage)
    expect(third.correlations.map((c) => c.agent.id)).toEqual(['report-bot'])
    await Promise.all([oldStage.close(), next.stage.close(), third.stage.close()])
  })
})
