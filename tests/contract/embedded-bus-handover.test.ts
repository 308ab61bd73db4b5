// The disk's next fdatasync starts the moment the group in flight is durable: what was published meanwhile
// is written and its sync asked for before the callers of the durable group are answered (their answers, and
// whatever else the loop does in that turn, used to come first). Groups stay durable, answered and
// delivered in order, and a failed sync fails only its own group.
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { DeliveredRecord, Topic } from '../../bus/bus.ts'
import { createEmbeddedBus, type EmbeddedBus } from '../../bus/embedded-bus.ts'
import type { EmbeddedStorage } from '../../bus/embedded-storage.ts'
import { nextTurn } from '../../runtime/next-turn.ts'
import { randomName, tempDir } from '../helpers/random-names.ts'
import { createTestRuntime } from '../helpers/test-runtime.ts'
import { waitFor } from '../helpers/wait-for.ts'
import { type Item, records, seqs } from './bus-records.ts'

/** Syncs held until released, each resolving (once really synced) or failing as told. */
const disk = { held: [] as { release(fail?: boolean): void }[], writes: 0 }

vi.mock('../../bus/embedded-storage.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../bus/embedded-storage.ts')>()
  return {
    ...original,
    openEmbeddedStorage: (...args: Parameters<typeof original.openEmbeddedStorage>): EmbeddedStorage => {
      const storage = original.openEmbeddedStorage(...args)
      return {
        ...storage,
        write: (rows, commits, at) => {
          disk.writes++
          return storage.write(rows, commits, at)
        },
        sync: () =>
          new Promise<void>((resolve, reject) => {
            disk.held.push({
              release: (fail) =>
                fail
                  ? reject(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' }))
                  : storage.sync().then(resolve, reject),
            })
          }),
      }
    },
  }
})

describe('embedded bus, the next group commit', () => {
  let bus: EmbeddedBus | undefined
  afterEach(async () => {
    const closing = bus?.close()
    // close() drains: release every sync it waits for.
    let closed = false
    void closing?.then(() => {
      closed = true
    })
    while (closing && !closed) {
      for (const sync of disk.held.splice(0)) sync.release()
      await nextTurn()
    }
    bus = undefined
  })

  const openBus = () => {
    disk.held = []
    disk.writes = 0
    bus = createEmbeddedBus(
      { dataDir: tempDir('nerve-bus'), partitions: 1, retentionMs: 60_000, maxBatch: 100 },
      createTestRuntime(),
    )
    return { bus, topic: { name: randomName('handover') } as Topic<Item> }
  }

  it('is written and synced before the group in flight is answered, and answered after it', async () => {
    const { bus, topic } = openBus()
    const delivered: DeliveredRecord<Item>[] = []
    await bus.subscribe(topic, 'g', async (batch) => {
      delivered.push(...batch)
    })
    const order: string[] = []
    const first = bus.publish(topic, records(2, 1, 0)).then(() => {
      order.push(`first answered; writes ${disk.writes}, syncs asked ${disk.held.length}`)
    })
    await waitFor(() => disk.held.length === 1, { what: 'the first group syncing' })
    const second = bus.publish(topic, records(2, 1, 2)).then(() => order.push('second answered'))
    await nextTurn()
    await nextTurn()
    // One write in flight: the second group waits for the first to be durable.
    expect(disk.writes).toBe(1)

    disk.held.shift()?.release()
    await first
    expect(order).toEqual(['first answered; writes 2, syncs asked 1'])
    await waitFor(() => delivered.length === 2, { what: 'the first group delivered' })
    disk.held.shift()?.release()
    await second
    await waitFor(() => delivered.length === 4, { what: 'the second group delivered' })
    expect(seqs(delivered)).toEqual([0, 1, 2, 3])
  })

  it('fails alone when its sync fails, the group before it durable and answered', async () => {
    const { bus, topic } = openBus()
    const first = bus.publish(topic, records(2, 1, 0))
    await waitFor(() => disk.held.length === 1, { what: 'the first group syncing' })
    const second = bus.publish(topic, records(2, 1, 2))
    await nextTurn()
    disk.held.shift()?.release()
    await first
    await waitFor(() => disk.held.length === 1, { what: 'the second group syncing' })
    disk.held.shift()?.release(true)
    await expect(second).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE' })

    const delivered: DeliveredRecord<Item>[] = []
    await bus.subscribe(topic, 'g', async (batch) => {
      delivered.push(...batch)
    })
    await waitFor(() => delivered.length === 2, { what: 'the first group delivered' })
    // The retry takes the offsets the failed group gave back.
    let retried = false
    const retry = bus.publish(topic, records(2, 1, 2)).then(() => {
      retried = true
    })
    // The consumer's offset commits have syncs of their own: release them all until the retry is durable.
    while (!retried) {
      for (const sync of disk.held.splice(0)) sync.release()
      await nextTurn()
    }
    await retry
    await waitFor(() => delivered.length === 4, { what: 'the retry delivered' })
    expect(delivered.map((r) => [r.offset, r.value.seq])).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
      [3, 3],
    ])
  })
})
