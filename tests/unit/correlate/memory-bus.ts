// A small in-memory Bus for the correlate stage tests. Its storage (logs and committed offsets) outlives
// a bus instance, so a test can "kill -9" the process at any durable step (publish, checkpoint, commit) and
// start a new stage over the same storage. Delivery is driven by the test (drain), one batch at a time; a
// handler's commit bound (Handled) is honoured as the embedded bus does: later batches are delivered, the
// commit stays at the bound, and a failed batch rewinds delivery to the last commit. A bound moved outside a
// batch (Subscription.advance) is committed at once, as one more durable step, up to what was delivered.
// A subscription drained (Subscription.drain: a clean stop's first half) is delivered nothing more, and
// still commits what advance() asks until it stops.
import type {
  Bus,
  BusRecord,
  DeliveredRecord,
  Handled,
  KeyValueLog,
  SubscribeOptions,
  Topic,
} from '../../../bus/bus.ts'

export type MemoryStorage = {
  logs: Map<string, DeliveredRecord<unknown>[][]>
  committed: Map<string, number[]>
  kv: Map<string, string>
}

export const createMemoryStorage = (): MemoryStorage => ({
  logs: new Map(),
  committed: new Map(),
  kv: new Map(),
})

export class Crash extends Error {}

/** Counts durable steps; the step numbered `crashAt` kills the process, before or after taking effect. */
export type CrashPlan = { crashAt: number; after: boolean }

export function createMemoryBus(storage: MemoryStorage, partitions: number, plan?: CrashPlan) {
  let steps = 0
  let dead = false
  const step = (effect: () => void) => {
    if (dead) throw new Crash('process is dead')
    const n = steps++
    if (plan && n === plan.crashAt) {
      if (plan.after) effect()
      dead = true
      throw new Crash(`crash at step ${n}`)
    }
    effect()
  }
  const partitionOf = (key: string) => {
    let h = 0
    for (const ch of key) h = (h * 31 + ch.charCodeAt(0)) >>> 0
    return h % partitions
  }
  const log = (name: string) => {
    let l = storage.logs.get(name)
    if (!l) {
      l = Array.from({ length: partitions }, () => [])
      storage.logs.set(name, l)
    }
    return l
  }
  const subs: {
    topic: string
    group: string
    handle: (batch: readonly DeliveredRecord<unknown>[]) => Promise<Handled>
    maxBatch: number
    draining: boolean
  }[] = []
  /** Next offset to deliver per subscription and partition: this process's, lost with it. */
  const positions = new Map<string, number[]>()

  const bus: Bus = {
    publish: async <T>(topic: Topic<T>, records: readonly BusRecord<T>[]) => {
      step(() => {
        const l = log(topic.name)
        for (const r of records) {
          const p = partitionOf(r.key)
          const list = l[p] as DeliveredRecord<unknown>[]
          list.push({ ...structuredClone(r), partition: p, offset: list.length })
        }
      })
    },
    subscribe: async <T>(
      topic: Topic<T>,
      group: string,
      handle: (batch: readonly DeliveredRecord<T>[]) => Promise<Handled>,
      options: SubscribeOptions = {},
    ) => {
      await options.onAssign?.(Array.from({ length: partitions }, (_, i) => i))
      const sub = {
        topic: topic.name,
        group,
        handle: handle as (batch: readonly DeliveredRecord<unknown>[]) => Promise<Handled>,
        maxBatch: options.maxBatch ?? 3,
        draining: false,
      }
      subs.push(sub)
      const advance = async (p: number, commit: number) => {
        const key = `${sub.topic}/${sub.group}`
        const offsets = storage.committed.get(key)
        const delivered = positions.get(key)?.[p]
        if (!subs.includes(sub) || !offsets || delivered === undefined) return
        const next = Math.min(commit, delivered)
        if (next <= (offsets[p] as number)) return
        try {
          step(() => {
            offsets[p] = next
          })
        } catch (err) {
          // Subscription.advance never rejects: a process killed here simply committed nothing more.
          if (!(err instanceof Crash)) throw err
        }
      }
      return {
        stop: async () => void subs.splice(subs.indexOf(sub), 1),
        advance,
        drain: async () => {
          sub.draining = true
        },
      }
    },
    partitionsOf: () => partitions,
    close: async () => void subs.splice(0),
  }

  /**
   * Delivers batches until every subscription is caught up; a handler error rewinds the partition to its
   * last commit and is thrown.
   */
  const drain = async () => {
    for (let progress = true; progress; ) {
      progress = false
      for (const sub of subs.filter((s) => !s.draining)) {
        const key = `${sub.topic}/${sub.group}`
        const offsets = storage.committed.get(key) ?? Array.from({ length: partitions }, () => 0)
        storage.committed.set(key, offsets)
        const next = positions.get(key) ?? [...offsets]
        positions.set(key, next)
        for (let p = 0; p < partitions; p++) {
          const from = next[p] as number
          const batch = (log(sub.topic)[p] as DeliveredRecord<unknown>[]).slice(from, from + sub.maxBatch)
          if (batch.length === 0) continue
          let handled: Handled
          try {
            handled = await sub.handle(batch.map((r) => structuredClone(r)))
          } catch (err) {
            next[p] = offsets[p] as number
            throw err
          }
          const end = from + batch.length
          next[p] = end
          const commit = Math.max(offsets[p] as number, handled ? Math.min(end, handled.commit) : end)
          step(() => {
            offsets[p] = commit
          })
          progress = true
        }
      }
    }
  }

  const records = <T>(topic: Topic<T>) => log(topic.name).flat() as DeliveredRecord<T>[]

  /** A durable key-value log in the same storage, subject to the same crash plan. */
  const put = (key: string, value: unknown) =>
    step(() => {
      if (value === undefined) storage.kv.delete(key)
      else storage.kv.set(key, JSON.stringify(value))
    })
  const keyValueLog = <T>(): KeyValueLog<T> => ({
    get: async (key) => {
      const v = storage.kv.get(key)
      return v === undefined ? undefined : (JSON.parse(v) as T)
    },
    put: async (key, value) => put(key, value),
    // One durable step per key: a crash may leave any part of the write done, as on Kafka.
    putMany: async (values) => {
      for (const [key, value] of values) put(key, value)
    },
    scan: async (prefix) =>
      new Map(
        [...storage.kv]
          .filter(([key]) => key.startsWith(prefix))
          .map(([key, value]) => [key, JSON.parse(value) as T]),
      ),
    close: async () => {},
  })

  return { bus, drain, records, keyValueLog, steps: () => steps, dead: () => dead }
}
