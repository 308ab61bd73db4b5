// A group commit whose later transaction fails takes back the earlier ones; when that take-back fails too
// (a full disk refuses the deletes as well), the records it left on disk must not wedge the bus: every
// later write would reuse their offsets and fail on them until a restart.
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { DeliveredRecord, Topic } from '../../bus/bus.ts'
import { createEmbeddedBus, type EmbeddedBus } from '../../bus/embedded-bus.ts'
import type { EmbeddedStorage } from '../../bus/embedded-storage.ts'
import { randomName, tempDir } from '../helpers/random-names.ts'
import { createTestRuntime } from '../helpers/test-runtime.ts'
import { waitFor } from '../helpers/wait-for.ts'

const faults = { failWrites: 0, failDiscard: false }

vi.mock('../../bus/embedded-storage.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../bus/embedded-storage.ts')>()
  return {
    ...original,
    openEmbeddedStorage: (...args: Parameters<typeof original.openEmbeddedStorage>): EmbeddedStorage => {
      const storage = original.openEmbeddedStorage(...args)
      let writes = 0
      return {
        ...storage,
        write: (rows, commits, at) => {
          writes++
          if (faults.failWrites > 0 && writes === faults.failWrites) {
            throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
          }
          storage.write(rows, commits, at)
        },
        discard: (rows) => {
          if (faults.failDiscard) {
            throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
          }
          storage.discard(rows)
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
  })

  it('keeps publishing once the disk has room again, past the records it could not take back', async () => {
    bus = createEmbeddedBus(
      { dataDir: tempDir('nerve-bus'), partitions: 1, retentionMs: 60_000, maxBatch: 1_000 },
      createTestRuntime(),
    )
    const topic = { name: randomName('take-back') } as Topic<Padded>
    const pad = 'x'.repeat(6_000)
    const part = (from: number) =>
      Array.from({ length: 100 }, (_, i) => ({ key: 'agent', value: { seq: from + i, pad } }))
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
})
