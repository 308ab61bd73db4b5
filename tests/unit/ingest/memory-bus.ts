// A Bus for ingest tests: keeps what was published per topic; publish can be made to fail or to wait.
import type { Bus, BusRecord, Topic } from '../../../bus/bus.ts'

export type MemoryBus = Bus & {
  published: Map<string, BusRecord<unknown>[]>
  records<T>(topic: Topic<T>): BusRecord<T>[]
  /** Next publishes run this first (to fail or to hold them). */
  before?: (topic: Topic<unknown>) => Promise<void>
}

export function createMemoryBus(): MemoryBus {
  const published = new Map<string, BusRecord<unknown>[]>()
  const bus: MemoryBus = {
    published,
    records: <T>(topic: Topic<T>) => (published.get(topic.name) ?? []) as BusRecord<T>[],
    publish: async (topic, records) => {
      await bus.before?.(topic)
      const list = published.get(topic.name) ?? []
      list.push(...(records as BusRecord<unknown>[]))
      published.set(topic.name, list)
    },
    subscribe: async () => ({ stop: async () => {} }),
    partitionsOf: () => 1,
    close: async () => {},
  }
  return bus
}
