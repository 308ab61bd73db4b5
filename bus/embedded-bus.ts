// The embedded bus: one process, durable on local disk (embedded-storage.ts). Keys are hashed onto
// partitions (partition-for-key.ts); each consumer group has a committed position per partition.
// - publish: records queued in the same event-loop turn, and the consumers' offset commits, are written
//   together and synced off the event loop (one fdatasync, group commit; one write in flight, those queued
//   meanwhile form the next), in transactions of about 1 MB with a turn of the loop between them, each
//   publish whole in one; each publish() resolves once its records are on disk and rejects, keeping none,
//   otherwise (a failed group takes back every transaction it wrote, records and offset commits; should
//   that take-back fail too, they stay, as a crash would leave them, and later writes go past them).
//   Consumers see records only once they are on disk.
// - subscribe: embedded-consumer.ts (batches of one partition, commit after handle(), redelivery with
//   backoff); a durable publish wakes the topic's consumers at once, and hands them the published values
//   themselves while they keep up (recent-records.ts), rather than rows to read back and parse.
// - one subscription per (group, topic) in a process: a second one is a wiring mistake and is refused.
// - retention deletes records older than retentionMs that every known group has committed past.
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { NerveError } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import { nextTurn } from '../runtime/next-turn.ts'
import type {
  Bus,
  BusRecord,
  DeliveredRecord,
  Handled,
  SubscribeOptions,
  Subscription,
  Topic,
} from './bus.ts'
import { type Consumer, startConsumer } from './embedded-consumer.ts'
import {
  type AppendRow,
  type CommitRow,
  type EmbeddedStorage,
  openEmbeddedStorage,
  type PriorPosition,
  storageError,
} from './embedded-storage.ts'
import { partitionForKey } from './partition-for-key.ts'
import { createRecentRecords, type RecentRecords } from './recent-records.ts'
import { parseStoredRecord, storedRecordJson } from './record-json.ts'

export type EmbeddedBusConfig = {
  dataDir: string
  partitions: number
  retentionMs: number
  maxBatch: number
  /** Cap on the bus file; past it publish rejects with STORAGE_FULL (as on a full disk). Default: none. */
  maxBytes?: number
}

export type EmbeddedBus = Bus & {
  /** The SQLite file holding every topic and offset. */
  readonly file: string
  /** Runs retention now (it also runs on a timer); resolves to the number of records deleted. */
  sweepRetention(): Promise<number>
}

type TopicState = {
  id: number
  name: string
  partitions: number
  heads: number[]
  lows: number[]
  subscriptions: Set<Consumer>
  /** Subscriptions that read values rather than text: only for them are published values kept. */
  valueReaders: number
  /** Subscriptions that read text or values: without them (every reader reads the file itself), nothing is kept. */
  readers: number
  /**
   * Next offsets past records a failed group could not take back (left on disk, as a crash would leave
   * them): the next write starts there rather than at `heads`, whose offsets those records still hold.
   */
  leftBehind?: number[]
  recent: RecentRecords
}

type Waiter = { resolve(): void; reject(err: unknown): void }
/**
 * `values[i]` is the record `rows[i]` holds as JSON; undefined when no subscription reads values (the
 * events are read as text by the correlate thread): the objects are then not kept alive past the publish.
 * `bytes`: the length of the rows' JSON text.
 */
type Pending = Waiter & { topic: TopicState; rows: AppendRow[]; values: unknown[] | undefined; bytes: number }
type PendingCommit = Waiter & { commit: CommitRow }

const deleteChunk = 5_000
/**
 * Rows one group commit writes (one fdatasync), unless a single publish holds more (a publish is written
 * whole): three 4 MB bodies published at once used to be one transaction of 12,000 rows, about 70 ms of the
 * event loop.
 */
const maxRowsPerWrite = 2_000
/**
 * Within a group commit, a transaction stops at about this much JSON (unless one publish holds more), and
 * the loop is given a turn before the next: a transaction costs about 7–9 ms per MB of rows here (1 MB
 * left transactions of 20–30 ms under load, so 512 KB). The group is still synced once, after its last
 * transaction (ingest publishes a large body in parts of 125 records, about 300 KB).
 */
const maxBytesPerTransaction = 512 * 1024
/** Published values kept for in-process consumers, per partition (a few MB at the sizes nerve writes). */
const recentPerPartition = 5_000
/** …and at most this much of their JSON text (alerts as large as the watched agent likes). */
const recentBytesPerPartition = 32 * 1024 * 1024

export function createEmbeddedBus(
  config: EmbeddedBusConfig,
  deps: { log: Logger; metrics: Metrics; now?: () => number },
): EmbeddedBus {
  const now = deps.now ?? Date.now
  const log = deps.log.child({ component: 'embedded_bus' })
  const telemetry = deps.metrics.component('embedded_bus')
  const retained = deps.metrics.gauge('nerve_bus_retained_records', 'Records kept on the bus.', [
    'topic',
    'partition',
  ])
  const lag = deps.metrics.gauge(
    'nerve_bus_consumer_lag_records',
    'Records published but not yet committed by a subscribed group.',
    ['topic', 'group', 'partition'],
  )
  const deletedTotal = deps.metrics.counter(
    'nerve_bus_retention_deleted_records_total',
    'Records deleted by retention after every known group had committed them.',
    ['topic'],
  )
  const storage: EmbeddedStorage = openEmbeddedStorage(config.dataDir, { maxBytes: config.maxBytes })
  const topics = new Map<string, TopicState>()
  const subscriptions = new Set<Subscription>()
  let queue: Pending[] = []
  let commits: PendingCommit[] = []
  let flushScheduled = false
  /** The write being synced; the next one starts when it is done. */
  let writing: Promise<void> | undefined
  let closing: Promise<void> | undefined
  let sweeping: Promise<number> | undefined

  const load = (stored: { id: number; name: string; partitions: number }): TopicState => {
    const heads = storage.heads(stored.id)
    const lows = heads.map((head, p) => storage.lowOffset(stored.id, p) ?? head)
    const state = {
      ...stored,
      heads,
      lows,
      subscriptions: new Set<Consumer>(),
      valueReaders: 0,
      readers: 0,
      recent: createRecentRecords(stored.partitions, recentPerPartition, recentBytesPerPartition),
    }
    topics.set(stored.name, state)
    if (stored.partitions !== config.partitions) {
      log.warn(
        { topic: stored.name, partitions: stored.partitions, configured: config.partitions },
        'Topic keeps the partition count it was created with, so every key stays on its partition.',
      )
    }
    for (let p = 0; p < state.partitions; p++) setRetainedGauge(state, p)
    return state
  }
  const setRetainedGauge = (t: TopicState, p: number) =>
    retained.set({ topic: t.name, partition: String(p) }, (t.heads[p] ?? 0) - (t.lows[p] ?? 0))
  const setLagGauge = (t: TopicState, c: Consumer, p: number) =>
    lag.set(
      { topic: t.name, group: c.group, partition: String(p) },
      (t.heads[p] ?? 0) - (c.positions[p] ?? 0),
    )
  const topicState = (name: string): TopicState =>
    topics.get(name) ?? load(storage.createTopic(name, config.partitions))
  const closedError = () => new NerveError('BUS_CLOSED', 'The bus is closed.')
  const withStorage = <R>(doing: string, run: () => R): R => {
    try {
      return run()
    } catch (err) {
      throw storageError(err, doing)
    }
  }

  for (const stored of storage.topics()) load(stored)

  const startWrite = (): Promise<void> => {
    writing = flush().finally(() => {
      writing = undefined
      if (queue.length > 0 || commits.length > 0) scheduleFlush()
    })
    return writing
  }
  const scheduleFlush = () => {
    if (flushScheduled || writing) return
    flushScheduled = true
    setImmediate(() => {
      flushScheduled = false
      if (!writing) void startWrite()
    })
  }

  const failWrite = (err: unknown, rows: AppendRow[], waiters: Waiter[]) => {
    const error = storageError(err, 'publishing')
    telemetry.error(error.code, 'publish', rows.length)
    log.error(
      { error_code: error.code, records: rows.length, err },
      'Publish failed; nothing was written and the caller was told to retry.',
    )
    for (const waiter of waiters) waiter.reject(error)
  }

  /**
   * Takes back what a failed group wrote but did not make durable: the rows of `written` (its publishes)
   * and the offset commits it carried (`positions`: where they were before), all rejected to their callers.
   */
  const discardUnsynced = (written: readonly Pending[], positions: readonly PriorPosition[]) => {
    try {
      storage.discard(
        written.flatMap((pending) => pending.rows),
        positions,
      )
    } catch (discardErr) {
      // Left on disk at offsets the next write would reuse: every later publish would fail on them until
      // a restart (which finds them, as after a crash: their senders were told to retry). Write past them;
      // they become visible with the next durable write of their topic. The offset commits stay too: their
      // consumers, told that they failed, deliver those batches again (at least once, as after a crash).
      for (const pending of written) {
        const t = pending.topic
        t.leftBehind ??= [...t.heads]
        const next = t.leftBehind
        for (const row of pending.rows)
          next[row.partition] = Math.max(next[row.partition] ?? 0, row.offset + 1)
      }
      log.error(
        { err: discardErr },
        'Could not take back records written but not made durable; writing past them.',
      )
    }
  }

  const flush = async () => {
    if (queue.length === 0 && commits.length === 0) return
    let take = 0
    let taken = 0
    while (
      take < queue.length &&
      (take === 0 || taken + (queue[take]?.rows.length ?? 0) <= maxRowsPerWrite)
    ) {
      taken += queue[take]?.rows.length ?? 0
      take++
    }
    const batch = queue.slice(0, take)
    const batchCommits = commits
    queue = queue.slice(take)
    commits = []
    const waiters: Waiter[] = [...batch, ...batchCommits]
    const nextHeads = new Map<TopicState, number[]>()
    const rows: AppendRow[] = []
    for (const pending of batch) {
      const heads = nextHeads.get(pending.topic) ?? [...(pending.topic.leftBehind ?? pending.topic.heads)]
      nextHeads.set(pending.topic, heads)
      for (const row of pending.rows) {
        row.offset = heads[row.partition] ?? 0
        heads[row.partition] = row.offset + 1
        rows.push(row)
      }
    }
    // Transactions of at most maxBytesPerTransaction (each publish whole in one), a turn between them; the
    // offset commits go with the first. A failing transaction takes back those written before it, the
    // offset commits with them: a consumer told that its commit failed rewinds to its last durable one, and
    // the file must say the same (kept or taken back together with the records of their group).
    const publishedAt = now()
    let priorPositions: PriorPosition[] = []
    let written = 0
    let start = 0
    do {
      let end = start
      let bytes = 0
      while (
        end < batch.length &&
        (end === start || bytes + (batch[end]?.bytes ?? 0) <= maxBytesPerTransaction)
      ) {
        bytes += batch[end]?.bytes ?? 0
        end++
      }
      let count = 0
      for (let i = start; i < end; i++) count += batch[i]?.rows.length ?? 0
      // Ahead of the bodies cut into parts: every publish and offset commit waits on this group.
      if (start > 0) await nextTurn(true)
      try {
        const prior = storage.write(
          rows.slice(written, written + count),
          start === 0 ? batchCommits.map((c) => c.commit) : [],
          publishedAt,
        )
        if (start === 0) priorPositions = prior
      } catch (err) {
        if (start > 0) discardUnsynced(batch.slice(0, start), priorPositions)
        return failWrite(err, rows, waiters)
      }
      written += count
      start = end
    } while (start < batch.length)
    try {
      await storage.sync()
    } catch (err) {
      // Not known to be on disk: take the records back so that a rejected publish keeps nothing.
      discardUnsynced(batch, priorPositions)
      return failWrite(err, rows, waiters)
    }
    for (const pending of batch) {
      const t = pending.topic
      if (t.readers === 0) continue
      const values = pending.values
      for (let i = 0; i < pending.rows.length; i++) {
        const row = pending.rows[i] as AppendRow
        t.recent.add(row.partition, row.offset, row.key, values?.[i], row.value)
      }
    }
    for (const [t, heads] of nextHeads) {
      const before = t.heads
      t.heads = heads
      t.leftBehind = undefined
      // Only the partitions this group wrote to: a gauge set costs a label hash, and a single alert's
      // group touches one partition of four.
      for (let p = 0; p < t.partitions; p++) {
        if (heads[p] === before[p]) continue
        setRetainedGauge(t, p)
        for (const c of t.subscriptions) setLagGauge(t, c, p)
      }
      for (const c of t.subscriptions) c.wake()
    }
    if (rows.length > 0) telemetry.received(rows.length)
    for (const waiter of waiters) waiter.resolve()
  }

  /** Writes and syncs everything queued, including what is queued while it runs. */
  const drain = async () => {
    while (writing || queue.length > 0 || commits.length > 0) await (writing ?? startWrite())
  }

  /** A consumer's position, written with the next group commit; resolves once durable. */
  const commitOffset = (commit: CommitRow): Promise<void> =>
    new Promise((resolve, reject) => {
      commits.push({ commit, resolve, reject })
      scheduleFlush()
    })

  const publish = async <T>(topic: Topic<T>, records: readonly BusRecord<T>[]): Promise<void> => {
    if (closing) throw closedError()
    if (records.length === 0) return
    const t = withStorage('creating a topic', () => topicState(topic.name))
    const values = t.valueReaders > 0 ? records.map((record) => record.value as unknown) : undefined
    let bytes = 0
    const rows = records.map((record, i): AppendRow => {
      const value = record.text ?? storedRecordJson(record.value, i)
      bytes += value.length
      return {
        topicId: t.id,
        partition: partitionForKey(record.key, t.partitions),
        offset: 0,
        key: record.key,
        value,
      }
    })
    return new Promise((resolve, reject) => {
      queue.push({ topic: t, rows, values, bytes, resolve, reject })
      scheduleFlush()
    })
  }

  const readStored = <T>(
    t: TopicState,
    p: number,
    from: number,
    limit: number,
    encoded: boolean,
  ): DeliveredRecord<T>[] =>
    withStorage('reading', () => storage.read(t.id, p, from, limit)).map((r) => ({
      key: r.key,
      value: (encoded ? r.value : parseStoredRecord(r.value)) as T,
      partition: p,
      offset: r.offset,
    }))

  /** Records [from, from + limit) of a partition as SubscribeOptions.unread delivers them: positions only. */
  const unreadRecords = <T>(p: number, from: number, limit: number): DeliveredRecord<T>[] => {
    const records: DeliveredRecord<T>[] = new Array(limit)
    for (let i = 0; i < limit; i++)
      records[i] = { key: '', value: undefined as T, partition: p, offset: from + i }
    return records
  }

  /** Where a group starts (its commits, else the earliest retained record); it holds retention from now. */
  const joinGroup = (t: TopicState, group: string): number[] => {
    if ([...t.subscriptions].some((c) => c.group === group)) {
      throw new NerveError(
        'CONFIG_INVALID',
        `Group ${group} already reads ${t.name} in this process; one subscription per group and topic.`,
      )
    }
    const committed = storage.committed(group, t.id)
    const positions = t.lows.map((low, p) => Math.max(low, committed.get(p) ?? low))
    storage.register(group, t.id, positions)
    return positions
  }

  const subscribe = async <T>(
    topic: Topic<T>,
    group: string,
    handle: (batch: readonly DeliveredRecord<T>[]) => Promise<Handled>,
    options: SubscribeOptions = {},
  ): Promise<Subscription> => {
    if (closing) throw closedError()
    const [t, positions] = withStorage('subscribing', () => {
      const state = topicState(topic.name)
      return [state, joinGroup(state, group)] as const
    })
    const consumer: Consumer = startConsumer(t, group, positions, handle, {
      read: options.unread
        ? (p, from, limit) => unreadRecords<T>(p, from, limit)
        : (p, from, limit) =>
            t.recent.take<T>(p, from, limit, options.encoded) ??
            readStored<T>(t, p, from, limit, options.encoded ?? false),
      log,
      telemetry,
      maxBatch: options.maxBatch ?? config.maxBatch,
      commit: (partition, nextOffset) => commitOffset({ group, topicId: t.id, partition, nextOffset }),
      committed: (p) => {
        setLagGauge(t, consumer, p)
        let slowest = Number.POSITIVE_INFINITY
        for (const c of t.subscriptions) slowest = Math.min(slowest, c.positions[p] ?? 0)
        t.recent.forgetBelow(p, slowest)
      },
    })
    t.subscriptions.add(consumer)
    if (!options.unread) t.readers++
    if (!options.encoded && !options.unread) t.valueReaders++
    for (let p = 0; p < t.partitions; p++) setLagGauge(t, consumer, p)
    log.info({ topic: t.name, group }, 'Subscribed.')
    const subscription = {
      advance: (partition: number, commit: number) => consumer.advance(partition, commit),
      drain: () => consumer.drain(),
      stop: async () => {
        await consumer.stop()
        if (t.subscriptions.delete(consumer)) {
          if (!options.unread) t.readers--
          if (!options.encoded && !options.unread) t.valueReaders--
        }
        subscriptions.delete(subscription)
        for (let p = 0; p < t.partitions; p++) lag.remove({ topic: t.name, group, partition: String(p) })
      },
    }
    subscriptions.add(subscription)
    return subscription
  }

  /**
   * Deletes, chunk by chunk, the old records every known group has committed; stops at the first young one.
   * The groups' positions are read again before each chunk: a group that joins during the turn between two
   * chunks starts at the first record left (joinGroup) and holds retention from there.
   */
  const sweepTopic = async (t: TopicState, cutoff: number): Promise<number> => {
    let deleted = 0
    for (let p = 0; p < t.partitions; p++) {
      let low = t.lows[p] ?? 0
      for (;;) {
        const committed = storage.minCommitted(t.id, p) ?? t.heads[p] ?? 0
        if (low >= committed || closing) break
        const chunkEnd = Math.min(committed, low + deleteChunk)
        const young = storage.firstPublishedSince(t.id, p, cutoff, low, chunkEnd)
        const upTo = young ?? chunkEnd
        if (upTo > low) {
          deleted += storage.deleteBelow(t.id, p, upTo)
          t.lows[p] = upTo
          setRetainedGauge(t, p)
        }
        if (young !== undefined) break
        low = upTo
        await yieldToLoop()
      }
    }
    if (deleted > 0) deletedTotal.inc({ topic: t.name }, deleted)
    return deleted
  }

  const sweep = async (): Promise<number> => {
    const cutoff = now() - config.retentionMs
    let deleted = 0
    try {
      for (const t of topics.values()) deleted += await sweepTopic(t, cutoff)
    } catch (err) {
      const error = storageError(err, 'deleting old records')
      telemetry.error(error.code, 'retention')
      log.warn({ error_code: error.code, err }, 'Retention failed; it will run again.')
    }
    if (deleted > 0) log.info({ deleted }, 'Deleted records past retention.')
    return deleted
  }
  const sweepRetention = (): Promise<number> => {
    if (closing) return Promise.resolve(0)
    sweeping ??= sweep().finally(() => {
      sweeping = undefined
    })
    return sweeping
  }
  const sweepEvery = Math.min(Math.max(config.retentionMs / 10, 1_000), 300_000)
  const sweepTimer = setInterval(() => void sweepRetention(), sweepEvery)
  sweepTimer.unref()

  const close = (): Promise<void> => {
    closing ??= (async () => {
      clearInterval(sweepTimer)
      await drain()
      await Promise.all([...subscriptions].map((s) => s.stop()))
      await sweeping
      await drain()
      await storage.close()
      log.info({ file: storage.file }, 'Bus closed.')
    })()
    return closing
  }

  log.info({ file: storage.file, topics: topics.size }, 'Bus opened.')
  return {
    file: storage.file,
    publish,
    subscribe,
    partitionsOf: (topic) => topics.get(topic.name)?.partitions ?? config.partitions,
    sweepRetention,
    close,
  }
}
