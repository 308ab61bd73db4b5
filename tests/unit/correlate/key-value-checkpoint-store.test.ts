// Correlator checkpoints on a compacted topic (the key-value log of the memory bus here): a changelog of
// one delta per batch with snapshots now and then. Restores give back the state the correlator ended a
// batch with; a save writes what the batch changed; keys a snapshot replaces are deleted; a whole
// checkpoint as earlier versions wrote it still restores and is replaced by the first snapshot.
// Crashes at every write are covered end to end in start-correlate.test.ts.
import { describe, expect, it } from 'vitest'
import type { KeyValueLog } from '../../../bus/bus.ts'
import type { CheckpointStore } from '../../../correlate/checkpoint-store.ts'
import { createCorrelator } from '../../../correlate/correlator.ts'
import {
  type CheckpointValue,
  createKeyValueCheckpointStore,
} from '../../../correlate/key-value-checkpoint-store.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { createMemoryBus, createMemoryStorage, type MemoryStorage } from './memory-bus.ts'
import { storeTestConfig as config, coreEvent, edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const key = (partition: number) => `nerve-correlate/nerve.events.v1/${partition}`

/** Alerts and IAM calls of five agents, 300 ms apart: pairs, evictions, and a buffer that keeps moving. */
const events: NormalizedEvent[] = Array.from({ length: 120 }, (_, i) =>
  i % 3 === 0
    ? edgeEvent({ id: `e${i}`, time: T0 + i * 300, agent: `agent-${i % 5}` })
    : coreEvent({ id: `c${i}`, time: T0 + i * 300, agent: `agent-${i % 5}` }),
)

/** The memory bus's key-value log, with every value written counted by its key. */
function countedLog(storage: MemoryStorage) {
  const log = createMemoryBus(storage, 1).keyValueLog<CheckpointValue>()
  const written: string[] = []
  const counted: KeyValueLog<CheckpointValue> = {
    ...log,
    put: (k, v) => {
      written.push(k)
      return log.put(k, v)
    },
    putMany: (values) => {
      written.push(...values.map(([k]) => k))
      return log.putMany(values)
    },
  }
  return { log: counted, written }
}

const asJson = (value: unknown) => JSON.parse(JSON.stringify(value))

/** Runs `list` through a fresh correlator, saving after every event; returns the correlator. */
async function saveEach(store: CheckpointStore, partition: number, list: NormalizedEvent[]) {
  const c = createCorrelator(config, undefined, { trackChanges: true })
  for (const [i, e] of list.entries()) {
    c.accept(e)
    await store.save(partition, { offset: i, changes: c.takeChanges(), snapshot: c.snapshot })
  }
  return c
}

describe('key-value checkpoint store', () => {
  for (const snapshotAfterBytes of [0, 4096, undefined]) {
    it(`restores the state of every batch (snapshots after ${snapshotAfterBytes ?? 'the default'} bytes)`, async () => {
      const storage = createMemoryStorage()
      const straight = createCorrelator(config)
      const expected = events.map((e) => JSON.stringify(straight.accept(e)))
      const store = createKeyValueCheckpointStore(countedLog(storage).log, key, { snapshotAfterBytes })
      const first = createCorrelator(config, undefined, { trackChanges: true })
      for (const [i, e] of events.entries()) {
        first.accept(e)
        await store.save(2, { offset: i, changes: first.takeChanges(), snapshot: first.snapshot })
        if (i % 10 !== 9) continue
        const reopened = createKeyValueCheckpointStore(countedLog(storage).log, key)
        const checkpoint = await reopened.load(2)
        expect(checkpoint?.offset).toBe(i)
        expect(checkpoint?.state).toEqual(asJson(first.snapshot()))
        const second = createCorrelator(config, checkpoint?.state)
        const rest = events.slice(i + 1).map((e) => JSON.stringify(second.accept(e)))
        expect(rest).toEqual(expected.slice(i + 1))
        expect(await reopened.load(3)).toBeUndefined()
      }
    })
  }

  it('writes one key per batch between snapshots, however large the state', async () => {
    const storage = createMemoryStorage()
    const { log, written } = countedLog(storage)
    const store = createKeyValueCheckpointStore(log, key)
    const tracked = createCorrelator(config, undefined, { trackChanges: true })
    for (let i = 0; i < 2_000; i++)
      tracked.accept(edgeEvent({ id: `e${i}`, time: T0 + i, agent: `a${i % 50}`, output: `sh -c ${i}` }))
    await store.save(0, { offset: 1_999, changes: tracked.takeChanges(), snapshot: tracked.snapshot })
    written.length = 0
    tracked.accept(coreEvent({ id: 'c-last', time: T0 + 2_000, agent: 'a7' }))
    await store.save(0, { offset: 2_000, changes: tracked.takeChanges(), snapshot: tracked.snapshot })
    expect(tracked.stats().buffered).toBe(2_001)
    expect(written).toEqual([`${key(0)}/delta/2`])
  })

  it('writes nothing more of a save once the partition is no longer owned, and rejects it', async () => {
    const storage = createMemoryStorage()
    const { log, written } = countedLog(storage)
    const store = createKeyValueCheckpointStore(log, key, { snapshotAfterBytes: 0 })
    await store.load(0)
    const tracked = createCorrelator(config, undefined, { trackChanges: true })
    tracked.accept(events[0] as NormalizedEvent)
    // Owned for the first write only: the delta; the snapshot's chunks, manifest and deletions are refused.
    let checks = 0
    const owned = () => checks++ < 1
    await expect(
      store.save(0, { offset: 0, changes: tracked.takeChanges(), snapshot: tracked.snapshot, owned }),
    ).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true })
    expect(written).toEqual([`${key(0)}/delta/1`])
    written.length = 0
    await expect(
      store.save(0, { offset: 1, changes: tracked.takeChanges(), snapshot: tracked.snapshot, owned }),
    ).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE' })
    expect(written).toEqual([])
  })

  it('deletes the keys a snapshot replaces', async () => {
    const storage = createMemoryStorage()
    const store = createKeyValueCheckpointStore(countedLog(storage).log, key, { snapshotAfterBytes: 0 })
    await saveEach(store, 1, events)
    const keys = [...storage.kv.keys()]
    const manifest = JSON.parse(storage.kv.get(`${key(1)}/snapshot`) as string)
    const chunks = keys.filter((k) => k.startsWith(`${key(1)}/snapshot/`))
    expect(chunks.every((k) => k.startsWith(`${key(1)}/snapshot/${manifest.generation}/`))).toBe(true)
    expect(chunks).toHaveLength(manifest.chunks)
    const deltas = keys
      .filter((k) => k.startsWith(`${key(1)}/delta/`))
      .map((k) => Number(k.split('/').at(-1)))
    expect(deltas.every((n) => n > manifest.delta)).toBe(true)
  })

  it('deletes on load what a crash left behind: chunks of an unfinished snapshot, replaced deltas', async () => {
    const storage = createMemoryStorage()
    const store = createKeyValueCheckpointStore(countedLog(storage).log, key, { snapshotAfterBytes: 0 })
    const c = await saveEach(store, 5, events.slice(0, 30))
    const manifest = JSON.parse(storage.kv.get(`${key(5)}/snapshot`) as string)
    const leftovers = [
      `${key(5)}/snapshot/${manifest.generation + 1}/0`,
      `${key(5)}/snapshot/${manifest.generation}/${manifest.chunks}`,
      `${key(5)}/delta/${manifest.delta}`,
    ]
    for (const k of leftovers) storage.kv.set(k, '[]')
    const checkpoint = await createKeyValueCheckpointStore(countedLog(storage).log, key).load(5)
    expect(checkpoint?.state).toEqual(asJson(c.snapshot()))
    for (const k of leftovers) expect(storage.kv.has(k), k).toBe(false)
  })

  it('names the chunk that is missing when a snapshot cannot be read whole', async () => {
    const storage = createMemoryStorage()
    const store = createKeyValueCheckpointStore(countedLog(storage).log, key, { snapshotAfterBytes: 0 })
    await saveEach(store, 4, events.slice(0, 30))
    const { generation } = JSON.parse(storage.kv.get(`${key(4)}/snapshot`) as string)
    storage.kv.delete(`${key(4)}/snapshot/${generation}/0`)
    await expect(createKeyValueCheckpointStore(countedLog(storage).log, key).load(4)).rejects.toMatchObject({
      code: 'INTERNAL',
      message: expect.stringContaining(`chunk 0 is missing`),
    })
  })

  it('restores a whole checkpoint written by an earlier version, and its first snapshot replaces it', async () => {
    const storage = createMemoryStorage()
    const earlier = createCorrelator(config)
    for (const e of events.slice(0, 60)) earlier.accept(e)
    const { log } = countedLog(storage)
    await log.put(key(0), { offset: 59, state: asJson(earlier.snapshot()) })

    const store = createKeyValueCheckpointStore(log, key, { snapshotAfterBytes: 0 })
    const checkpoint = await store.load(0)
    expect(checkpoint).toEqual({ offset: 59, state: asJson(earlier.snapshot()) })
    const c = createCorrelator(config, checkpoint?.state, { trackChanges: true })
    for (const [i, e] of events.slice(60).entries()) {
      c.accept(e)
      await store.save(0, { offset: 60 + i, changes: c.takeChanges(), snapshot: c.snapshot })
    }
    expect(storage.kv.has(key(0))).toBe(false)
    const restored = await createKeyValueCheckpointStore(log, key).load(0)
    expect(restored).toEqual({ offset: 119, state: asJson(c.snapshot()) })
  })
})

describe('key-value checkpoint store with saves of many records (correlation.checkpoint.max_records)', () => {
  /** A record limit, as Kafka has (1 MiB by default, 16 MiB on the state topic nerve creates). */
  function limitedLog(storage: MemoryStorage) {
    const log = createMemoryBus(storage, 1).keyValueLog<CheckpointValue>()
    const fits = (value: unknown) => {
      if (Buffer.byteLength(JSON.stringify(value ?? null)) > 1024 * 1024) throw new Error('MESSAGE_TOO_LARGE')
    }
    const limited: KeyValueLog<CheckpointValue> = {
      ...log,
      put: async (k, v) => {
        fits(v)
        return log.put(k, v)
      },
      putMany: async (values) => {
        for (const [, v] of values) fits(v)
        return log.putMany(values)
      },
    }
    return limited
  }
  const manyAlerts = (from: number, count: number) =>
    Array.from({ length: count }, (_, j) => {
      const i = from + j
      return edgeEvent({
        id: `e${i}`,
        time: T0 + i,
        agent: `a${i % 50}`,
        output: `sh -c ${'x'.repeat(600)} ${i}`,
      })
    })

  it('writes changes larger than one record may hold, and restores them', async () => {
    const storage = createMemoryStorage()
    const store = createKeyValueCheckpointStore(limitedLog(storage), key)
    const tracked = createCorrelator(config, undefined, { trackChanges: true })
    for (const e of manyAlerts(0, 2_000)) tracked.accept(e)
    await store.save(0, { offset: 1_999, changes: tracked.takeChanges(), snapshot: tracked.snapshot })
    for (const e of manyAlerts(2_000, 10)) tracked.accept(e)
    await store.save(0, { offset: 2_009, changes: tracked.takeChanges(), snapshot: tracked.snapshot })
    const restored = await createKeyValueCheckpointStore(limitedLog(storage), key).load(0)
    expect(restored?.offset).toBe(2_009)
    expect(asJson(restored?.state)).toEqual(asJson(tracked.snapshot()))
  })

  it('deletes the pieces of a large delta with the delta when a snapshot replaces it', async () => {
    const storage = createMemoryStorage()
    const log = createMemoryBus(storage, 1).keyValueLog<CheckpointValue>()
    const store = createKeyValueCheckpointStore(log, key, { snapshotAfterBytes: 4 * 1024 * 1024 })
    const tracked = createCorrelator(config, undefined, { trackChanges: true })
    for (const e of manyAlerts(0, 2_000)) tracked.accept(e)
    await store.save(0, { offset: 1_999, changes: tracked.takeChanges(), snapshot: tracked.snapshot })
    expect([...storage.kv.keys()].some((k) => k.includes('/delta-part/'))).toBe(true)
    for (const e of manyAlerts(2_000, 2_000)) tracked.accept(e)
    await store.save(0, { offset: 3_999, changes: tracked.takeChanges(), snapshot: tracked.snapshot })
    expect(storage.kv.has(`${key(0)}/snapshot`)).toBe(true)
    expect([...storage.kv.keys()].filter((k) => k.includes('/delta'))).toEqual([])
    const restored = await createKeyValueCheckpointStore(log, key).load(0)
    expect(asJson(restored?.state)).toEqual(asJson(tracked.snapshot()))
  })

  it('ignores and deletes on load the pieces of a large delta whose head a crash kept from being written', async () => {
    const storage = createMemoryStorage()
    const log = limitedLog(storage)
    const store = createKeyValueCheckpointStore(log, key)
    const tracked = createCorrelator(config, undefined, { trackChanges: true })
    for (const e of manyAlerts(0, 10)) tracked.accept(e)
    await store.save(0, { offset: 9, changes: tracked.takeChanges(), snapshot: tracked.snapshot })
    const saved = asJson(tracked.snapshot())
    for (const e of manyAlerts(10, 2_000)) tracked.accept(e)
    const crashing: KeyValueLog<CheckpointValue> = {
      ...log,
      put: async (k, v) => {
        if (k.includes('/delta/')) throw new Error('killed')
        return log.put(k, v)
      },
    }
    const dying = createKeyValueCheckpointStore(crashing, key)
    await dying.load(0)
    await expect(
      dying.save(0, { offset: 2_009, changes: tracked.takeChanges(), snapshot: tracked.snapshot }),
    ).rejects.toThrow('killed')
    expect([...storage.kv.keys()].some((k) => k.includes('/delta-part/'))).toBe(true)
    const restored = await createKeyValueCheckpointStore(log, key).load(0)
    expect(restored?.offset).toBe(9)
    expect(asJson(restored?.state)).toEqual(saved)
    expect([...storage.kv.keys()].some((k) => k.includes('/delta-part/'))).toBe(false)
  })
})
