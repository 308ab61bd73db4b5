// A group commit whose later transaction fails takes back the earlier ones, the consumers' offset commits
// they carried too; when that take-back fails too (a full disk refuses the deletes as well), the records it
// left on disk must not wedge the bus: every later write would reuse their offsets and fail on them until
// a restart.
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { DeliveredRecord, Topic } from '../../bus/bus.ts'
import { createEmbeddedBus, type EmbeddedBus } from '../../bus/embedded-bus.ts'
import type { EmbeddedStorage } from '../../bus/embedded-storage.ts'
import { nextTurn } from '../../runtime/next-turn.ts'
import { gate } from '../helpers/gate.ts'
import { randomName, tempDir } from '../helpers/random-names.ts'
import { createTestRuntime } from '../helpers/test-runtime.ts'
import { waitFor } from '../helpers/wait-for.ts'

const faults = { failWrites: 0, failDiscard: false, failSync: false, writes: 0 }

vi.mock('../../bus/embedded-storage.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../bus/embedded-storage.ts')>()
  return {
    ...original,
    openEmbeddedStorage: (...args: Parameters<typeof original.openEmbeddedStorage>): EmbeddedStorage => {
      const storage = original.openEmbeddedStorage(...args)
      faults.writes = 0
      return {
        ...storage,
        write: (rows, commits, at) => {
          faults.writes++
          if (faults.failWrites > 0 && faults.writes === faults.failWrites) {
            throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
          }
          return storage.write(rows, commits, at)
        },
        sync: () =>
          faults.failSync
            ? Promise.reject(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' }))
            : storage.sync(),
        discard: (rows, positions) => {
          if (faults.failDiscard) {
            throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
          }
          storage.discard(rows, positions)
        },
      }
    },
  }
})

type Padded = { seq: number; pad: string }

describe('embedded bus, a take-back that fails', () => {
  let bus: EmbeddedBus | undefined
  afterEach(async () => {
    await bus?.close()
    faults.failWrites = 0
    faults.failDiscard = false
    faults.failSync = false
  })

  /** A bus of one partition, and a topic of its own. */
  const openBus = () => ({
    open: createEmbeddedBus(
      { dataDir: tempDir('nerve-bus'), partitions: 1, retentionMs: 60_000, maxBatch: 1_000 },
      createTestRuntime(),
    ),
    topic: { name: randomName('take-back') } as Topic<Padded>,
  })
  const pad = 'x'.repeat(6_000)
  /** 100 records of about 6 KB each (600 KB: a transaction of its own), numbered from `from`. */
  const part = (from: number) =>
    Array.from({ length: 100 }, (_, i) => ({ key: 'agent', value: { seq: from + i, pad } }))

  const positionsOf = (file: string, group: string) => {
    const db = new Database(file, { readonly: true })
    const rows = db.prepare('SELECT next_offset FROM group_offsets WHERE group_name = ?').all(group)
    db.close()
    return rows
  }

  it('keeps publishing once the disk has room again, past the records it could not take back', async () => {
    const { open, topic } = openBus()
    bus = open
    // Two publishes of 600 KB at once: one group, two transactions; the second fails, the take-back too.
    faults.failWrites = 2
    faults.failDiscard = true
    const outcomes = await Promise.allSettled([bus.publish(topic, part(0)), bus.publish(topic, part(100))])
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected'])
    // The disk has room again: the retry of both publishes is accepted.
    faults.failWrites = 0
    faults.failDiscard = false
    await bus.publish(topic, part(0))
    await bus.publish(topic, part(100))
    const handled: DeliveredRecord<Padded>[] = []
    await bus.subscribe(topic, 'g', async (batch) => {
      handled.push(...batch)
    })
    // Every accepted record is delivered (the ones left behind too, as after a crash: at least once).
    await waitFor(() => handled.filter((r) => r.offset >= 100).length >= 200, { what: 'the retried records' })
    const offsets = handled.map((r) => r.offset)
    expect(new Set(offsets).size).toBe(offsets.length)
    expect(handled.slice(-200).map((r) => r.value.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i))
  })

  it('takes back the offset commits of a group whose later transaction fails, as it takes back its records', async () => {
    const { open, topic } = openBus()
    bus = open
    const { held, release } = gate()
    const delivered: number[] = []
    await bus.subscribe(topic, 'g', async (batch) => {
      delivered.push(...batch.map((r) => r.offset))
      await held
    })
    await bus.publish(topic, [{ key: 'agent', value: { seq: -1, pad: '' } }])
    await waitFor(() => delivered.length === 1, { what: 'the first batch' })
    // The batch's commit goes in the group commit of the two 600 KB publishes made in the same turn: in
    // its first transaction; the second transaction fails.
    faults.failWrites = faults.writes + 2
    release()
    const outcomes = await Promise.allSettled([bus.publish(topic, part(0)), bus.publish(topic, part(100))])
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected'])
    // The consumer was told its commit failed and rewinds to its last durable one (it delivers the batch
    // again after a backoff): the file must say the same, not the position of a commit it was refused.
    expect(positionsOf(bus.file, 'g')).toEqual([{ next_offset: 0 }])
    faults.failWrites = 0
    await waitFor(() => delivered.length === 2, { what: 'the batch delivered again' })
    expect(delivered).toEqual([0, 0])
  })

  it('takes back an offset commit whose sync fails', async () => {
    const { open, topic } = openBus()
    bus = open
    await bus.publish(topic, [{ key: 'agent', value: { seq: 0, pad: '' } }])
    const delivered: number[] = []
    // The handler's batch is committed in a group of its own, whose fdatasync fails.
    faults.failSync = true
    await bus.subscribe(topic, 'g', async (batch) => {
      delivered.push(...batch.map((r) => r.offset))
    })
    await waitFor(() => delivered.length === 1, { what: 'the batch' })
    await waitFor(() => faults.writes >= 2, { what: 'the commit written' })
    await nextTurn()
    await nextTurn()
    expect(positionsOf(bus.file, 'g')).toEqual([{ next_offset: 0 }])
    faults.failSync = false
    await waitFor(() => delivered.length === 2, { what: 'the batch delivered again' })
  })
})
