// One group commit syncs while the next is written: an answer waits for its own group's fdatasync, not also
// for the write that used to start only after the one before. What must still hold: a group is durable,
// answered and delivered only after every group before it; a failed sync fails the group written behind it
// too (its WAL frames follow the unsynced ones), and both are taken back; nothing is written while a sync
// holds for the WAL's restart.
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { DeliveredRecord, Topic } from '../../bus/bus.ts'
import { createEmbeddedBus, type EmbeddedBus } from '../../bus/embedded-bus.ts'
import type { EmbeddedStorage } from '../../bus/embedded-storage.ts'
import { nextTurn } from '../../runtime/next-turn.ts'
import { randomName, tempDir } from '../helpers/random-names.ts'
import { createTestRuntime } from '../helpers/test-runtime.ts'
import { waitFor } from '../helpers/wait-for.ts'
import { type Item, records, seqs } from './bus-records.ts'

/** Syncs held until released, one by one, each resolving or failing as told; and a restart hold. */
const disk = {
  held: [] as { release(fail?: boolean): void }[],
  writes: 0,
  hold: undefined as Promise<void> | undefined,
}

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
        restartHold: () => disk.hold,
      }
    },
  }
})

const outcome = (promise: Promise<void>) => {
  const seen = { settled: 'pending' as 'pending' | 'fulfilled' | 'rejected' }
  promise.then(
    () => {
      seen.settled = 'fulfilled'
    },
    () => {
      seen.settled = 'rejected'
    },
  )
  return seen
}

describe('embedded bus, group commits that overlap', () => {
  let bus: EmbeddedBus | undefined
  afterEach(async () => {
    disk.hold = undefined
    const closing = bus?.close()
    // close() drains: release every sync it waits for.
    while (
      closing &&
      (await Promise.race([closing.then(() => true), nextTurn().then(() => false)])) === false
    )
      for (const sync of disk.held.splice(0)) sync.release()
    bus = undefined
  })

  const openBus = () => {
    disk.held = []
    disk.writes = 0
    bus = createEmbeddedBus(
      { dataDir: tempDir('nerve-bus'), partitions: 1, retentionMs: 60_000, maxBatch: 100 },
      createTestRuntime(),
    )
    return { bus, topic: { name: randomName('overlap') } as Topic<Item> }
  }

  const fileOffsets = (file: string) => {
    const db = new Database(file, { readonly: true })
    const rows = db.prepare('SELECT first_offset, last_offset FROM segments ORDER BY last_offset').all()
    db.close()
    return rows
  }

  it('writes the next group while one syncs, and answers and delivers them in order', async () => {
    const { bus, topic } = openBus()
    const delivered: DeliveredRecord<Item>[] = []
    await bus.subscribe(topic, 'g', async (batch) => {
      delivered.push(...batch)
    })
    const first = outcome(bus.publish(topic, records(2, 1, 0)))
    await waitFor(() => disk.held.length === 1, { what: 'the first group syncing' })
    const second = outcome(bus.publish(topic, records(2, 1, 2)))
    // The second group is on the file while the first one's sync has not returned.
    await waitFor(() => disk.writes === 2, { what: 'the second group written' })
    expect(fileOffsets(bus.file)).toEqual([
      { first_offset: 0, last_offset: 1 },
      { first_offset: 2, last_offset: 3 },
    ])
    expect(disk.held).toHaveLength(1)
    expect([first.settled, second.settled, delivered.length]).toEqual(['pending', 'pending', 0])

    disk.held.shift()?.release()
    // The second group's sync starts as soon as the first is durable; it is answered only after its own.
    await waitFor(() => first.settled === 'fulfilled' && disk.held.length === 1, {
      what: 'the first answered, the second syncing',
    })
    await waitFor(() => delivered.length === 2, { what: 'the first group delivered' })
    expect(second.settled).toBe('pending')
    disk.held.shift()?.release()
    await waitFor(() => delivered.length === 4, { what: 'the second group delivered' })
    expect(second.settled).toBe('fulfilled')
    expect(seqs(delivered)).toEqual([0, 1, 2, 3])
  })

  it('fails and takes back the group written behind one whose sync fails', async () => {
    const { bus, topic } = openBus()
    const first = outcome(bus.publish(topic, records(2, 1, 0)))
    await waitFor(() => disk.held.length === 1, { what: 'the first group syncing' })
    const second = outcome(bus.publish(topic, records(2, 1, 2)))
    await waitFor(() => disk.writes === 2, { what: 'the second group written' })

    disk.held.shift()?.release(true)
    await waitFor(() => first.settled !== 'pending' && second.settled !== 'pending', {
      what: 'both publishes settled',
    })
    expect([first.settled, second.settled]).toEqual(['rejected', 'rejected'])
    expect(fileOffsets(bus.file)).toEqual([])

    // The retry starts at offset 0 again, and is delivered alone.
    const retry = outcome(bus.publish(topic, records(2, 1, 0)))
    await waitFor(() => disk.held.length === 1, { what: 'the retry syncing' })
    disk.held.shift()?.release()
    await waitFor(() => retry.settled === 'fulfilled', { what: 'the retry answered' })
    const delivered: DeliveredRecord<Item>[] = []
    await bus.subscribe(topic, 'g', async (batch) => {
      delivered.push(...batch)
    })
    await waitFor(() => delivered.length === 2 && disk.held.length > 0, { what: 'the retry delivered' })
    expect(delivered.map((r) => [r.offset, r.value.seq])).toEqual([
      [0, 0],
      [1, 1],
    ])
  })

  it('writes nothing while a sync holds for the WAL to restart', async () => {
    const { bus, topic } = openBus()
    const first = outcome(bus.publish(topic, records(1, 1, 0)))
    await waitFor(() => disk.held.length === 1, { what: 'the first group syncing' })
    let endHold = () => {}
    disk.hold = new Promise<void>((resolve) => {
      endHold = resolve
    })
    const second = outcome(bus.publish(topic, records(1, 1, 1)))
    await nextTurn()
    await nextTurn()
    expect(disk.writes).toBe(1)
    disk.hold = undefined
    endHold()
    await waitFor(() => disk.writes === 2, { what: 'the second group written after the hold' })
    disk.held.shift()?.release()
    await waitFor(() => disk.held.length === 1, { what: 'the second group syncing' })
    disk.held.shift()?.release()
    await waitFor(() => first.settled === 'fulfilled' && second.settled === 'fulfilled', {
      what: 'both answered',
    })
  })
})
