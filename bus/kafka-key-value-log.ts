// The latest value per key over a compacted topic: a reader applies the records as they arrive (a null value
// is a tombstone), and get() first waits until the reader has reached the end the topic had when get() was
// called, so it sees every write any instance made before. kafka-bus.ts supplies reading, writing and the
// partition ends; this file holds the bookkeeping, without kafkajs.
import { NerveError } from '../runtime/errors.ts'
import type { KeyValueLog } from './bus.ts'

export type LogRecord = { key: string | null; value: Buffer | null; partition: number; offset: number }
/** A partition's retained range: `low` is the first offset kept, `high` the next offset to be written. */
export type LogEnd = { partition: number; low: number; high: number }

export type KeyValueTableDeps = {
  /** The topic, for messages. */
  name: string
  /** One send of every record (a null value is a tombstone). */
  write(records: { key: string; value: string | null }[]): Promise<void>
  ends(): Promise<LogEnd[]>
  now: () => number
  catchUpTimeoutMs: number
  onSize?(entries: number): void
}

export type KeyValueTable<T> = Omit<KeyValueLog<T>, 'close'> & {
  /** Records read from the topic, in offset order per partition. */
  apply(records: readonly LogRecord[]): void
}

export function createKeyValueTable<T>(deps: KeyValueTableDeps): KeyValueTable<T> {
  const latest = new Map<string, Buffer>()
  const positions = new Map<number, number>()
  const waiters = new Set<() => void>()

  const apply = (records: readonly LogRecord[]) => {
    for (const r of records) {
      if (r.key !== null) {
        if (r.value === null) latest.delete(r.key)
        else latest.set(r.key, r.value)
      }
      positions.set(r.partition, r.offset + 1)
    }
    deps.onSize?.(latest.size)
    for (const wake of [...waiters]) wake()
  }

  const nextApply = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer)
        waiters.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      waiters.add(wake)
    })

  const caughtUp = async () => {
    const ends = await deps.ends()
    const reached = () => ends.every((e) => (positions.get(e.partition) ?? e.low) >= e.high)
    const deadline = deps.now() + deps.catchUpTimeoutMs
    while (!reached()) {
      const left = deadline - deps.now()
      if (left <= 0) {
        throw new NerveError('BUS_UNAVAILABLE', `Reading ${deps.name} did not reach its end in time.`, {
          retriable: true,
        })
      }
      await nextApply(Math.min(200, left))
    }
  }

  const putMany = async (values: readonly (readonly [string, T | undefined])[]) => {
    if (values.length === 0) return
    await deps.write(
      values.map(([key, value]) => ({ key, value: value === undefined ? null : JSON.stringify(value) })),
    )
  }

  return {
    apply,
    get: async (key) => {
      await caughtUp()
      const value = latest.get(key)
      return value === undefined ? undefined : (JSON.parse(value.toString('utf8')) as T)
    },
    put: (key, value) => putMany([[key, value]]),
    putMany,
    scan: async (prefix) => {
      await caughtUp()
      const found = new Map<string, T>()
      for (const [key, value] of latest) {
        if (key.startsWith(prefix)) found.set(key, JSON.parse(value.toString('utf8')) as T)
      }
      return found
    },
  }
}
