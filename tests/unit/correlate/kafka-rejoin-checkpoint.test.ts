// On Kafka a member can lose a partition and get it back while one of its timer-driven checkpoint saves is
// still in flight: evicted from its group (it missed heartbeats), it joins again as a new member and is
// given the same partition, which it restores from the shared log. By then the partition is "owned" again,
// but the save in flight carries the state and delta numbers from before, when another member may have
// handled and saved the partition: it must write nothing more.
import { describe, expect, it } from 'vitest'
import type { Bus, DeliveredRecord, Handled, SubscribeOptions } from '../../../bus/bus.ts'
import {
  type CheckpointValue,
  createKeyValueCheckpointStore,
} from '../../../correlate/key-value-checkpoint-store.ts'
import { checkpointKey, startCorrelate } from '../../../correlate/start-correlate.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { gate } from '../../helpers/gate.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { createMemoryBus, createMemoryStorage } from './memory-bus.ts'
import { edgeEvent } from './sample-events.ts'

type Handle = (batch: readonly DeliveredRecord<NormalizedEvent>[]) => Promise<Handled>

describe('a timer-driven checkpoint save on Kafka, in flight while its member rejoins the group', () => {
  it('writes nothing more once the partition was revoked and restored again', async () => {
    const storage = createMemoryStorage()
    const log = createMemoryBus(storage, 1).keyValueLog<CheckpointValue>()
    // The save is held between the delta's pieces and the head naming them.
    let piecesWritten = false
    const { held, release } = gate()
    const gated = {
      ...log,
      putMany: async (values: readonly (readonly [string, CheckpointValue | undefined])[]) => {
        await log.putMany(values)
        if (piecesWritten || !values.some(([key]) => key.includes('/delta-part/'))) return
        piecesWritten = true
        await held
      },
    }
    // A bus driven by hand: the test hands the batch over and runs the rebalance hooks itself.
    let handle: Handle | undefined
    let options: SubscribeOptions = {}
    let owned = true
    const bus = {
      publish: async () => {},
      subscribe: async (_topic: unknown, _group: string, h: Handle, o: SubscribeOptions = {}) => {
        handle = h
        options = o
        return { stop: async () => {}, owns: () => owned }
      },
    } as unknown as Bus
    const runtime = createTestRuntime()
    const defaults = loadConfig()
    let time = 0
    const stage = await startCorrelate(
      {
        ...defaults,
        correlation: { ...defaults.correlation, checkpoint: { max_records: 1_000, max_interval: 5 } },
      },
      {
        bus,
        log: runtime.log,
        metrics: runtime.metrics,
        checkpoints: createKeyValueCheckpointStore(gated, checkpointKey, { deltaPartChars: 64 }),
        now: () => time,
      },
    )
    await options.onAssign?.([0])
    const shell = edgeEvent({ id: 'e-shell-a', agent: 'data-cleaner', time: Date.UTC(2024, 7, 1, 13, 30) })
    await (handle as Handle)([{ key: shell.agent.id, value: shell, partition: 0, offset: 0 }])
    time = 10
    await waitFor(() => piecesWritten, { what: 'the timer-driven save, between its pieces and head' })

    // Evicted, then joined again and given partition 0 back: revoked, restored (the pieces without a head
    // are an unfinished delta: deleted), and owned again.
    owned = false
    await options.onRevoke?.([0])
    await options.onAssign?.([0])
    owned = true
    release()
    const head = `${checkpointKey(0)}/delta/1`
    const fenced = () => runtime.logs.some((l) => l.msg?.includes('its new owner saves it'))
    await waitFor(() => fenced() || storage.kv.has(head), { what: 'the old save to end' })
    expect(storage.kv.has(head)).toBe(false)
    expect(fenced()).toBe(true)
    await stage.close()
  })
})
