// The Bus contract, written once and run against every implementation (embedded-bus.test.ts always,
// the Kafka bus in tests/integration). What it proves: order per key, at-least-once across a crash
// before commit, no redelivery after commit (also across a reopen), independent groups, a failed
// handler neither loses nor reorders records, a stop in two steps (drain, then stop) commits what the
// handler made durable last, and a closed bus says so.
import { afterEach, describe, expect, it } from 'vitest'
import type { Bus, DeliveredRecord, Handled, Subscription, Topic } from '../../bus/bus.ts'
import { isNerveError } from '../../runtime/errors.ts'
import { randomName } from '../helpers/random-names.ts'
import { waitFor } from '../helpers/wait-for.ts'
import { byKey, type Item, range, records, seqs, sorted } from './bus-records.ts'

export type BusHarness = {
  bus: Bus
  /** Closes the current bus if still open and opens a new one on the same storage (a restart). */
  reopen(): Promise<Bus>
  /** Closes whatever is open and removes what the harness created. */
  cleanup(): Promise<void>
}

export type BusContractOptions = {
  /** How long a delivery may take to show up (Kafka needs a group join). Default 10 s. */
  timeoutMs?: number
}

export type MakeBus = (opts: { partitions: number }) => Promise<BusHarness>

const topicNamed = (): Topic<Item> => ({ name: randomName('contract-topic') })

export function busContract(name: string, makeBus: MakeBus, options: BusContractOptions = {}): void {
  const timeoutMs = options.timeoutMs ?? 10_000
  const until = <T>(check: () => T, what: string) => waitFor(check, { timeoutMs, what })

  describe(`bus contract: ${name}`, () => {
    let harness: BusHarness | undefined
    const open = async (partitions = 4) => {
      harness = await makeBus({ partitions })
      return harness
    }
    afterEach(async () => {
      await harness?.cleanup()
      harness = undefined
    })

    /** Subscribes and collects every delivered record; `fail` may throw to refuse a batch. */
    async function collect(
      bus: Bus,
      topic: Topic<Item>,
      group: string,
      opts: { maxBatch?: number; fail?: (batch: readonly DeliveredRecord<Item>[]) => void } = {},
    ) {
      const handled: DeliveredRecord<Item>[] = []
      const attempts: DeliveredRecord<Item>[][] = []
      const sub: Subscription = await bus.subscribe(
        topic,
        group,
        async (batch) => {
          attempts.push([...batch])
          opts.fail?.(batch)
          handled.push(...batch)
        },
        { maxBatch: opts.maxBatch ?? 7 },
      )
      return { handled, attempts, sub }
    }

    it('keeps the order of each key, one key on one partition, offsets rising', async () => {
      const { bus } = await open()
      const topic = topicNamed()
      const all = records(300, 7)
      for (let i = 0; i < all.length; i += 25) await bus.publish(topic, all.slice(i, i + 25))
      const { handled, sub } = await collect(bus, topic, randomName('group'))
      await until(() => handled.length >= 300, '300 records')
      await sub.stop()

      expect(sorted(seqs(handled))).toEqual(range(0, 300))
      for (const [, values] of byKey(handled)) expect(values).toEqual(sorted(values))
      const partitionOf = new Map<string, number>()
      const lastOffset = new Map<number, number>()
      for (const r of handled) {
        expect(partitionOf.get(r.key) ?? r.partition).toBe(r.partition)
        partitionOf.set(r.key, r.partition)
        expect(r.partition).toBeLessThan(bus.partitionsOf(topic))
        expect(r.offset).toBeGreaterThan(lastOffset.get(r.partition) ?? -1)
        lastOffset.set(r.partition, r.offset)
      }
    })

    it('delivers records published while subscribed', async () => {
      const { bus } = await open()
      const topic = topicNamed()
      const { handled, sub } = await collect(bus, topic, randomName('group'))
      await bus.publish(topic, records(10))
      await until(() => handled.length >= 10, 'the first 10')
      await bus.publish(topic, records(10, 5, 10))
      await until(() => handled.length >= 20, 'the next 10')
      await sub.stop()
      expect(sorted(seqs(handled))).toEqual(range(0, 20))
    })

    it('delivers a refused batch again, the same records, without losing or reordering any', async () => {
      const { bus } = await open()
      const topic = topicNamed()
      await bus.publish(topic, records(60, 3))
      let calls = 0
      const { handled, attempts, sub } = await collect(bus, topic, randomName('group'), {
        fail: () => {
          calls++
          if (calls % 3 === 1) throw new Error('handler refused the batch')
        },
      })
      await until(() => handled.length >= 60, 'all 60 after refusals')
      await sub.stop()

      expect(seqs(handled)).toHaveLength(60)
      expect(sorted(seqs(handled))).toEqual(range(0, 60))
      for (const [, values] of byKey(handled)) expect(values).toEqual(sorted(values))
      const refused = attempts.filter((_, i) => i % 3 === 0)
      expect(refused.length).toBeGreaterThan(0)
      for (const batch of refused) {
        const retry = attempts
          .slice(attempts.indexOf(batch) + 1)
          .find((b) => b[0]?.partition === batch[0]?.partition)
        expect(seqs(retry ?? [])[0]).toBe(seqs(batch)[0])
      }
    })

    it('redelivers what was not committed when the consumer dies, and nothing it had committed', async () => {
      const h = await open(1)
      const topic = topicNamed()
      const group = randomName('group')
      await h.bus.publish(topic, records(50))
      let batches = 0
      const first = await collect(h.bus, topic, group, {
        maxBatch: 10,
        fail: () => {
          batches++
          if (batches > 2) throw new Error('consumer crashed before commit')
        },
      })
      await until(() => batches > 2, 'the crash')
      await first.sub.stop()
      expect(sorted(seqs(first.handled))).toEqual(range(0, 20))

      const bus = await h.reopen()
      const second = await collect(bus, topic, group, { maxBatch: 10 })
      await until(() => second.handled.length >= 30, 'the 30 uncommitted records')
      await second.sub.stop()
      expect(seqs(second.handled)).toEqual(range(20, 50))
    })

    it('never redelivers committed records, also after a reopen', async () => {
      const h = await open()
      const topic = topicNamed()
      const group = randomName('group')
      await h.bus.publish(topic, records(40))
      const first = await collect(h.bus, topic, group)
      await until(() => first.handled.length >= 40, 'the first 40')
      await first.sub.stop()

      const bus = await h.reopen()
      await bus.publish(topic, records(15, 5, 40))
      const second = await collect(bus, topic, group)
      await until(() => second.handled.length >= 15, 'the 15 new ones')
      await bus.publish(topic, records(5, 5, 55))
      await until(() => second.handled.length >= 20, 'the last 5')
      await second.sub.stop()
      expect(sorted(seqs(second.handled))).toEqual(range(40, 60))
    })

    it('lets several groups read the same records independently', async () => {
      const { bus } = await open()
      const topic = topicNamed()
      await bus.publish(topic, records(80))
      let refusing = true
      const slow = await collect(bus, topic, randomName('slow'), {
        fail: () => {
          if (refusing) throw new Error('slow group is down')
        },
      })
      const fast = await collect(bus, topic, randomName('fast'))
      await until(() => fast.handled.length >= 80, 'the fast group')
      expect(slow.handled).toHaveLength(0)
      refusing = false
      await until(() => slow.handled.length >= 80, 'the slow group')
      const late = await collect(bus, topic, randomName('late'))
      await until(() => late.handled.length >= 80, 'a group that joins later, from the earliest record')
      await Promise.all([slow.sub.stop(), fast.sub.stop(), late.sub.stop()])
      for (const g of [slow, fast, late]) expect(sorted(seqs(g.handled))).toEqual(range(0, 80))
    })

    it('waits for the in-flight batch on close, commits it, then refuses publish and subscribe', async () => {
      const h = await open()
      const topic = topicNamed()
      const group = randomName('group')
      await h.bus.publish(topic, records(5, 1))
      let release = () => {}
      const started: number[] = []
      await h.bus.subscribe(
        topic,
        group,
        (batch) => {
          started.push(...seqs(batch))
          return new Promise<void>((resolve) => {
            release = resolve
          })
        },
        { maxBatch: 100 },
      )
      await until(() => started.length === 5, 'the batch in flight')
      let closed = false
      const closing = h.bus.close().then(() => {
        closed = true
      })
      await new Promise((r) => setImmediate(r))
      expect(closed).toBe(false)
      release()
      await closing

      const refusal = await h.bus.publish(topic, records(1)).catch((err: unknown) => err)
      expect(isNerveError(refusal) && refusal.code).toBe('BUS_CLOSED')
      const subRefusal = await h.bus.subscribe(topic, group, async () => {}).catch((err: unknown) => err)
      expect(isNerveError(subRefusal) && subRefusal.code).toBe('BUS_CLOSED')

      const bus = await h.reopen()
      await bus.publish(topic, records(1, 1, 5))
      const after = await collect(bus, topic, group)
      await until(() => after.handled.length >= 1, 'the record after the committed batch')
      await after.sub.stop()
      expect(seqs(after.handled)).toEqual([5])
    })

    it('stops in two steps: a drain hands over nothing more, and an advance after it holds across a reopen', async () => {
      const h = await open(1)
      const topic = topicNamed()
      const group = randomName('group')
      await h.bus.publish(topic, records(10, 1))
      let release = () => {}
      const started: number[] = []
      // A handler that saves nothing in its batches (bound 0): only its final advance moves the commit.
      const sub = await h.bus.subscribe(
        topic,
        group,
        (batch) => {
          started.push(...seqs(batch))
          return new Promise<Handled>((resolve) => {
            release = () => resolve({ commit: 0 })
          })
        },
        { maxBatch: 4 },
      )
      await until(() => started.length === 4, 'the first batch in flight')
      expect(sub.drain).toBeDefined()
      const drained = sub.drain?.()
      // Records that arrive during the stop are left for the restart.
      await h.bus.publish(topic, records(5, 1, 10))
      release()
      await drained
      expect(started).toEqual(range(0, 4))
      // The final save covered the first three records.
      await sub.advance?.(0, 3)
      await sub.stop()
      expect(started).toEqual(range(0, 4))

      const bus = await h.reopen()
      const after = await collect(bus, topic, group)
      await until(() => after.handled.length >= 12, 'the records not committed')
      await after.sub.stop()
      expect(seqs(after.handled)).toEqual(range(3, 15))
    })

    it('accepts an empty publish as a no-op', async () => {
      const { bus } = await open()
      await expect(bus.publish(topicNamed(), [])).resolves.toBeUndefined()
    })
  })
}
