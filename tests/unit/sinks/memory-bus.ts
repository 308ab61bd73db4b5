// An in-memory Bus for the sinks' tests: one log per topic, one committed offset per (topic, group), a
// batch committed only when its handler resolves (a rejected batch is delivered again).
import type { Bus, BusRecord, DeliveredRecord, Subscription, Topic } from '../../../bus/bus.ts'

type Sub = {
  topic: string
  group: string
  handle: (batch: readonly DeliveredRecord<unknown>[]) => Promise<void>
  maxBatch: number
  busy: boolean
  again: boolean
  stopped: boolean
  idle: Promise<void>
}

export type MemoryBus = Bus & { published<T>(topic: Topic<T>): T[] }

export function createMemoryBus(): MemoryBus {
  const logs = new Map<string, DeliveredRecord<unknown>[]>()
  const offsets = new Map<string, number>()
  const subs: Sub[] = []
  const log = (topic: string) => {
    const records = logs.get(topic) ?? []
    logs.set(topic, records)
    return records
  }

  const pump = (sub: Sub) => {
    if (sub.busy) {
      sub.again = true
      return
    }
    sub.busy = true
    sub.idle = (async () => {
      const key = `${sub.topic}|${sub.group}`
      do {
        sub.again = false
        for (;;) {
          const offset = offsets.get(key) ?? 0
          const batch = log(sub.topic).slice(offset, offset + sub.maxBatch)
          if (batch.length === 0 || sub.stopped) break
          try {
            await sub.handle(batch)
            offsets.set(key, offset + batch.length)
          } catch {
            await new Promise((r) => setTimeout(r, 5))
          }
        }
      } while (sub.again && !sub.stopped)
      sub.busy = false
    })()
  }

  return {
    async publish<T>(topic: Topic<T>, records: readonly BusRecord<T>[]) {
      const target = log(topic.name)
      for (const r of records) target.push({ ...r, partition: 0, offset: target.length })
      for (const sub of subs) if (sub.topic === topic.name) pump(sub)
    },
    async subscribe<T>(
      topic: Topic<T>,
      group: string,
      handle: (batch: readonly DeliveredRecord<T>[]) => Promise<void>,
      options?: { maxBatch?: number },
    ): Promise<Subscription> {
      const sub: Sub = {
        topic: topic.name,
        group,
        handle: handle as Sub['handle'],
        maxBatch: options?.maxBatch ?? 100,
        busy: false,
        again: false,
        stopped: false,
        idle: Promise.resolve(),
      }
      subs.push(sub)
      pump(sub)
      return {
        async stop() {
          sub.stopped = true
          await sub.idle
          subs.splice(subs.indexOf(sub), 1)
        },
      }
    },
    partitionsOf: () => 1,
    async close() {
      for (const s of subs) s.stopped = true
      await Promise.all(subs.map((s) => s.idle))
    },
    published: <T>(topic: Topic<T>) => log(topic.name).map((r) => r.value as T),
  }
}
