// The records a topic's in-process consumers have yet to read, as the values that were published: a consumer
// that keeps up takes its batch from here instead of reading the rows back from SQLite and parsing their JSON
// again (which cost about a fifth of `nerve run`'s CPU under load). While two groups or more read a topic's
// values, they are deep-frozen when first handed out, because those groups share them: a handler that tried
// to change a record would otherwise change it for the others. A topic whose values one group reads (the
// correlations, by the revoke dispatcher, unless Elasticsearch reads them too) hands them out as they are, as
// a read from disk does (freezing a correlation walked every object of it, 4-17 µs each), and only once: a
// redelivery or a group that subscribes later reads those records from disk. A topic read only
// as text, as the events are by the correlate thread, never pays for it. Their JSON text is kept beside them
// for a consumer that forwards records (SubscribeOptions.encoded); a topic that nobody reads as values keeps
// only the text (its value is undefined), and a consumer of values then reads from disk. Bounded per
// partition: past the cap the oldest are forgotten, and a consumer that far behind reads from disk as before.
// Bounded in bytes too (the texts' length, the values being about as large): the watched agent chooses how
// large its alerts are. A record published with a head (BusRecord.head: the correlations, by the correlate
// thread) is kept unparsed, as its head and text (Unparsed): a reader that decides on heads
// (SubscribeOptions.heads) and reads the topic's values alone gets the head, and the value parsed only if it
// reads it; any other reader gets the value parsed when first taken.
import type { DeliveredRecord } from './bus.ts'

/** A record's value not parsed yet: its publisher's head (BusRecord.head) and its JSON text. */
export class Unparsed {
  #value: unknown
  constructor(
    readonly head: unknown,
    readonly text: string,
  ) {}
  /** The value, parsed on the first call. */
  value(): unknown {
    this.#value ??= JSON.parse(this.text)
    return this.#value
  }
}

export type RecentRecords = {
  /**
   * Remembers a record written at `offset` as `text`, and as `value` unless undefined (nobody reads it as a
   * value); a gap before it restarts the partition's window.
   */
  add(partition: number, offset: number, key: string, value: unknown, text: string): void
  /**
   * Records [from, from + limit) of a partition when every one of them is remembered (as a value, unless
   * `encoded`: as text). `shared` (the default): other groups read the same values, which are deep-frozen.
   * `heads` (not shared): a value kept Unparsed is handed over with its head, parsed on first access.
   */
  take<T>(
    partition: number,
    from: number,
    limit: number,
    encoded?: boolean,
    shared?: boolean,
    heads?: boolean,
  ): DeliveredRecord<T>[] | undefined
  /** Forgets the records below `offset` (every subscribed group has committed them). */
  forgetBelow(partition: number, offset: number): void
}

type Window = { base: number; keys: string[]; values: unknown[]; texts: string[]; bytes: number }

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
  }
  return value
}

export function createRecentRecords(
  partitions: number,
  maxPerPartition: number,
  maxBytesPerPartition = Number.POSITIVE_INFINITY,
): RecentRecords {
  const windows: Window[] = Array.from({ length: partitions }, () => ({
    base: 0,
    keys: [],
    values: [],
    texts: [],
    bytes: 0,
  }))

  const drop = (w: Window, count: number) => {
    for (let i = 0; i < count; i++) w.bytes -= (w.texts[i] as string).length
    w.keys.splice(0, count)
    w.values.splice(0, count)
    w.texts.splice(0, count)
    w.base += count
  }

  return {
    add(partition, offset, key, value, text) {
      const w = windows[partition]
      if (!w) return
      if (offset !== w.base + w.values.length) {
        w.base = offset
        w.keys = []
        w.values = []
        w.texts = []
        w.bytes = 0
      }
      w.keys.push(key)
      w.values.push(value)
      w.texts.push(text)
      w.bytes += text.length
      // Dropped in chunks: one splice per thousand records rather than one per record.
      if (w.values.length > maxPerPartition) drop(w, Math.min(w.values.length, 1000))
      if (w.bytes > maxBytesPerPartition) {
        let count = 0
        for (let over = w.bytes - maxBytesPerPartition; over > 0; count++)
          over -= (w.texts[count] as string).length
        drop(w, count)
      }
    },
    take<T>(partition: number, from: number, limit: number, encoded = false, shared = true, heads = false) {
      const w = windows[partition]
      if (!w || from < w.base || from + limit > w.base + w.values.length) return undefined
      const records: DeliveredRecord<T>[] = []
      const values = encoded ? w.texts : w.values
      for (let offset = from; offset < from + limit; offset++) {
        const i = offset - w.base
        let value = values[i]
        if (value === undefined) return undefined
        if (value instanceof Unparsed) {
          if (heads && !shared) {
            records.push(headRecord<T>(w.keys[i] as string, value, partition, offset))
            continue
          }
          value = value.value()
        }
        records.push({
          key: w.keys[i] as string,
          value: (encoded || !shared ? value : deepFreeze(value)) as T,
          partition,
          offset,
        })
      }
      // A value handed out unfrozen is its reader's now: a redelivery, or a group that subscribes after,
      // reads the record from disk rather than what that reader may have made of it.
      if (!encoded && !shared)
        for (let i = from - w.base; i < from - w.base + limit; i++) w.values[i] = undefined
      return records
    },
    forgetBelow(partition, offset) {
      const w = windows[partition]
      if (w && offset > w.base) drop(w, Math.min(offset - w.base, w.values.length))
    },
  }
}

/** A record handed over with its head, its value parsed from its text on first access. */
function headRecord<T>(
  key: string,
  unparsed: Unparsed,
  partition: number,
  offset: number,
): DeliveredRecord<T> {
  return {
    key,
    head: unparsed.head,
    partition,
    offset,
    get value() {
      return unparsed.value() as T
    },
  }
}
