// The embedded bus's topics as it holds them in memory: per partition the next offset to write (heads) and
// the first one retained (lows), the subscriptions reading them and the values published for those
// (recent-records.ts). Loaded from the file when the bus opens, created on first use with the configured
// partition count; the retained-records and consumer-lag gauges follow them.
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { Consumer } from './embedded-consumer.ts'
import type { EmbeddedStorage, StoredTopic } from './embedded-storage.ts'
import { createRecentRecords, type RecentRecords } from './recent-records.ts'

export type TopicState = {
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

export type TopicGauges = {
  /** nerve_bus_retained_records{topic, partition} */
  retained: ReturnType<Metrics['gauge']>
  /** nerve_bus_consumer_lag_records{topic, group, partition} */
  lag: ReturnType<Metrics['gauge']>
}

export type EmbeddedTopics = {
  /** Every topic known so far. */
  all(): IterableIterator<TopicState>
  /** The topic named so; created (on the file too) with the configured partitions when it is new. */
  get(name: string): TopicState
  /** Partitions of a known topic, else the configured count. */
  partitionsOf(name: string): number
  setRetainedGauge(t: TopicState, p: number): void
  setLagGauge(t: TopicState, c: Consumer, p: number): void
  removeLagGauges(t: TopicState, group: string): void
  /** After a group commit moved the heads of `t` (from `before`): its gauges, and its consumers woken. */
  headsMoved(t: TopicState, before: readonly number[]): void
}

/** Published values kept for in-process consumers, per partition (a few MB at the sizes nerve writes). */
const recentPerPartition = 5_000
/** …and at most this much of their JSON text (alerts as large as the watched agent likes). */
const recentBytesPerPartition = 32 * 1024 * 1024

export function loadEmbeddedTopics(
  storage: EmbeddedStorage,
  partitions: number,
  deps: { log: Logger; gauges: TopicGauges },
): EmbeddedTopics {
  const { log } = deps
  const { retained, lag } = deps.gauges
  const topics = new Map<string, TopicState>()

  const setRetainedGauge = (t: TopicState, p: number) =>
    retained.set({ topic: t.name, partition: String(p) }, (t.heads[p] ?? 0) - (t.lows[p] ?? 0))
  const setLagGauge = (t: TopicState, c: Consumer, p: number) =>
    lag.set(
      { topic: t.name, group: c.group, partition: String(p) },
      (t.heads[p] ?? 0) - (c.positions[p] ?? 0),
    )

  const load = (stored: StoredTopic): TopicState => {
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
    if (stored.partitions !== partitions) {
      log.warn(
        { topic: stored.name, partitions: stored.partitions, configured: partitions },
        'Topic keeps the partition count it was created with, so every key stays on its partition.',
      )
    }
    for (let p = 0; p < state.partitions; p++) setRetainedGauge(state, p)
    return state
  }

  for (const stored of storage.topics()) load(stored)

  return {
    all: () => topics.values(),
    get: (name) => topics.get(name) ?? load(storage.createTopic(name, partitions)),
    partitionsOf: (name) => topics.get(name)?.partitions ?? partitions,
    setRetainedGauge,
    setLagGauge,
    removeLagGauges: (t, group) => {
      for (let p = 0; p < t.partitions; p++) lag.remove({ topic: t.name, group, partition: String(p) })
    },
    headsMoved: (t, before) => {
      // Only the partitions this group wrote to: a gauge set costs a label hash, and a single alert's
      // group touches one partition of four.
      for (let p = 0; p < t.partitions; p++) {
        if (t.heads[p] === before[p]) continue
        setRetainedGauge(t, p)
        for (const c of t.subscriptions) setLagGauge(t, c, p)
      }
      for (const c of t.subscriptions) c.wake()
    },
  }
}
