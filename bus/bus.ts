// The bus between stages: one interface, two implementations (embedded-bus.ts, kafka-bus.ts).
// Stages import this file and topics.ts only; they never know which implementation they run on.

/** A named stream of records of one type. Declared once, in topics.ts. */
export type Topic<T> = { readonly name: string; readonly _type?: T }

/** key = agent id: records of one key keep their order and land on one partition. */
export type BusRecord<T> = {
  key: string
  value: T
  /**
   * The value's JSON text when the publisher holds it already (bus-port.ts: a stage thread's records cross
   * as text; ingest: an event around its raw item's own text): a bus may write it rather than serialize
   * `value` again. JSON.stringify(value), or a text that JSON.parse turns into what it makes of that (the
   * same members in the same order), with no newline. Never set on delivered records.
   */
  text?: string
  /**
   * Where `raw`'s JSON value lies in `text`, when the publisher wrote `text` around a value of its own
   * (ingest: a CloudTrail event around its record's text): counted by the writer, never searched for in
   * the text. A bus may keep it beside the record, for a reader that does not read `raw`
   * (SubscribeOptions.withoutRaw). Never set on delivered records.
   */
  rawSpan?: RawSpan
  /**
   * A few of `value`'s members (JSON-able), copied by the publisher from the value itself (never read from
   * `text`), for a reader that decides on them alone (SubscribeOptions.heads): with `text`, a bus may leave
   * the text unparsed until a reader wants the whole value. Delivered only under SubscribeOptions.heads.
   */
  head?: unknown
}

/** Characters [start, end) of a record's JSON text: its `raw` member's value. */
export type RawSpan = { readonly start: number; readonly end: number }

/** What a handler sees: the record plus where it came from (for state checkpoints and logs). */
export type DeliveredRecord<T> = BusRecord<T> & { partition: number; offset: number }

export type Subscription = {
  stop(): Promise<void>
  /**
   * False once `partition` may be another member's: a rebalance has begun (until it ends with the
   * partition kept), or it was assigned elsewhere. A stage that writes a partition's shared state outside
   * its batches (the correlator's timer-driven checkpoints) checks it before each write. Absent on a bus
   * that never moves partitions (the embedded one): always owned.
   */
  owns?(partition: number): boolean
  /**
   * For a handler that makes its effects durable outside its batches too (the correlator's timer-driven
   * checkpoints, when a partition goes quiet): moves `partition`'s commit bound (Handled) to `commit`, and
   * the bus commits up to there without waiting for the partition's next batch. Never past the records
   * whose handle() resolved, never backwards, nothing when that leaves the commit where it is, and nothing
   * once the partition may be another member's. Resolves once committed or skipped; never rejects (a
   * failure is counted and logged, and the partition's next batch commits as usual).
   */
  advance?(partition: number, commit: number): Promise<void>
  /**
   * The first half of a clean stop, for a handler that makes its last effects durable once its batches
   * end (the correlator's final checkpoint save): hands over no more batches, and resolves once the batch
   * in flight was handled and committed. The subscriber stays in its group meanwhile (Kafka: it goes on
   * heartbeating, and a rebalance may still move partitions away), so advance() commits that final save
   * before stop() leaves. Records not handed over are read again after the restart, from the commit. A
   * Kafka member bounds drain(), the final save, the advances after it and stop() together by one budget,
   * its session timeout (stopTimeLeft), and gives leaving the group a short grace after it.
   */
  drain?(): Promise<void>
  /**
   * After drain(): the milliseconds left of the clean stop's budget, which the handler's final save gets
   * (a save still running then is abandoned: the restart reads again from the last durable checkpoint).
   * Absent where a stop has no budget (the embedded bus: its commits are local).
   */
  stopTimeLeft?(): number
}

/**
 * What handle() may resolve with, for a stage whose effects become durable only now and then (the
 * correlator checkpoints its state every so many records): `commit` is the partition's next offset to
 * read after a restart, at most one past the batch's last record; the group's commit never passes it (nor
 * moves back). Later batches are still delivered. Without it the whole batch is committed.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a handler that commits whole batches returns Promise<void>.
export type Handled = void | { commit: number }

export type SubscribeOptions = {
  /** Most records handed to one handle() call. */
  maxBatch?: number
  /**
   * Partitions this subscriber now owns (Kafka: after a rebalance). Records of a partition are handed to
   * handle() only after the onAssign() that named it resolved, so per-partition state can be restored first.
   * Kafka calls it after every rebalance; a bus that never moves partitions may call it once, with every
   * partition, before the first batch.
   */
  onAssign?(partitions: number[]): Promise<void>
  /** Partitions this subscriber no longer owns (rebalance or stop); their in-flight batches are finished. */
  onRevoke?(partitions: number[]): Promise<void>
  /**
   * Hand over each record's value as the JSON text it was published as, unparsed: for a subscriber that
   * forwards records elsewhere (bus-port.ts, to a worker thread), where text crosses cheaper than objects.
   * The embedded bus hands over the text it stored, an edge event's alert output once: read it with
   * parseStoredRecord (record-json.ts).
   */
  encoded?: boolean
  /**
   * Hand over records without their values, for a subscriber that reads them itself from the bus's file
   * (bus-port.ts, a worker thread with a read connection of its own): each record carries its partition
   * and offset only (key '', value undefined). Only the embedded bus honours it; a bus that does not
   * delivers as `encoded` says.
   */
  unread?: boolean
  /**
   * The handler never reads an event's `raw`: a bus may hand `raw` as null, for the records whose writer
   * said where it lies in their text (BusRecord.rawSpan), and skip parsing it. Only the embedded bus's
   * file read from a worker thread honours it (bus-port.ts); elsewhere records come whole.
   */
  withoutRaw?: boolean
  /**
   * The handler decides on a record's `head` where it has one, and reads `value` only for the records it
   * needs whole: a bus may then hand over, as the only reader of a topic's values, records whose `value`
   * is parsed from their text on first access (the revoke dispatcher: a correlation's text is parsed only
   * for a revoke it sends). Only the embedded bus honours it, for records published with a head in this
   * process; every other record comes with its value and no head.
   */
  heads?: boolean
}

/**
 * The latest value per key, shared by every instance: a compacted topic on Kafka. For per-partition
 * checkpoints and lookup maps that all instances must resolve the same way (identity links).
 */
export interface KeyValueLog<T> {
  /** The latest value written for `key` by any instance before this call, or undefined. */
  get(key: string): Promise<T | undefined>
  /** Resolves once durable; `undefined` deletes the key (a tombstone). */
  put(key: string, value: T | undefined): Promise<void>
  /**
   * Several keys in one write; resolves once all are durable. Not atomic: after a failure (or a crash)
   * any of them may have been written.
   */
  putMany(values: readonly (readonly [key: string, value: T | undefined])[]): Promise<void>
  /** The latest value of every key that starts with `prefix`, as get() sees them. */
  scan(prefix: string): Promise<Map<string, T>>
  close(): Promise<void>
}

export interface Bus {
  /** Resolves once every record is durable; rejects (NerveError BUS_*, STORAGE_FULL) and keeps nothing otherwise. */
  publish<T>(topic: Topic<T>, records: readonly BusRecord<T>[]): Promise<void>
  /**
   * Reads `topic` as consumer group `group`, from the group's committed position. A batch holds records
   * of one partition and is committed only after handle() resolves (up to what it resolved with, see
   * Handled); if it rejects, the partition is delivered again from its last commit (the same records, or
   * more when an earlier batch was handled but not committed).
   */
  subscribe<T>(
    topic: Topic<T>,
    group: string,
    handle: (batch: readonly DeliveredRecord<T>[]) => Promise<Handled>,
    options?: SubscribeOptions,
  ): Promise<Subscription>
  /** Number of partitions of a topic (keys are hashed onto them). */
  partitionsOf(topic: Topic<unknown>): number
  /** Stops every subscription after its in-flight batch, then releases the storage. */
  close(): Promise<void>
}
