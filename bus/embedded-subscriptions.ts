// The embedded bus's consumer side: a group joins a topic at its committed positions (else at the earliest
// record retained) and holds retention from then on; its consumer (embedded-consumer.ts) reads the values
// the group commit kept while it keeps up (recent-records.ts), else the rows on disk, and commits with the
// next group commit. One subscription per (group, topic) in a process: a second one is a wiring mistake
// and is refused.
import { NerveError } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { ComponentTelemetry } from '../runtime/metrics.ts'
import type { DeliveredRecord, Handled, SubscribeOptions, Subscription, Topic } from './bus.ts'
import { type Consumer, startConsumer } from './embedded-consumer.ts'
import type { GroupCommit } from './embedded-group-commit.ts'
import type { EmbeddedStorage } from './embedded-storage.ts'
import type { EmbeddedTopics, TopicState } from './embedded-topics.ts'
import { parseStoredRecord } from './record-json.ts'
import { withStorage } from './storage-error.ts'

export type EmbeddedSubscriptions = {
  subscribe<T>(
    topic: Topic<T>,
    group: string,
    handle: (batch: readonly DeliveredRecord<T>[]) => Promise<Handled>,
    options: SubscribeOptions,
  ): Subscription
  /** Stops every subscription after its in-flight batch. */
  stopAll(): Promise<unknown>
}

/** Records [from, from + limit) of a partition as SubscribeOptions.unread delivers them: positions only. */
function unreadRecords<T>(p: number, from: number, limit: number): DeliveredRecord<T>[] {
  const records: DeliveredRecord<T>[] = new Array(limit)
  for (let i = 0; i < limit; i++)
    records[i] = { key: '', value: undefined as T, partition: p, offset: from + i }
  return records
}

export function createEmbeddedSubscriptions(
  storage: EmbeddedStorage,
  deps: {
    topics: EmbeddedTopics
    groupCommit: GroupCommit
    log: Logger
    telemetry: ComponentTelemetry
    maxBatch: number
  },
): EmbeddedSubscriptions {
  const { topics, log, telemetry } = deps
  const subscriptions = new Set<Subscription>()

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

  const subscribe = <T>(
    topic: Topic<T>,
    group: string,
    handle: (batch: readonly DeliveredRecord<T>[]) => Promise<Handled>,
    options: SubscribeOptions,
  ): Subscription => {
    const [t, positions] = withStorage('subscribing', () => {
      const state = topics.get(topic.name)
      return [state, joinGroup(state, group)] as const
    })
    const consumer: Consumer = startConsumer(t, group, positions, handle, {
      read: options.unread
        ? (p, from, limit) => unreadRecords<T>(p, from, limit)
        : (p, from, limit) =>
            t.recent.take<T>(p, from, limit, options.encoded, t.valueReaders > 1, options.heads) ??
            readStored<T>(t, p, from, limit, options.encoded ?? false),
      log,
      telemetry,
      maxBatch: options.maxBatch ?? deps.maxBatch,
      commit: (partition, nextOffset) =>
        deps.groupCommit.commitOffset({ group, topicId: t.id, partition, nextOffset }),
      committed: (p) => {
        topics.setLagGauge(t, consumer, p)
        let slowest = Number.POSITIVE_INFINITY
        for (const c of t.subscriptions) slowest = Math.min(slowest, c.positions[p] ?? 0)
        t.recent.forgetBelow(p, slowest)
      },
    })
    t.subscriptions.add(consumer)
    if (!options.unread) t.readers++
    if (!options.encoded && !options.unread) t.valueReaders++
    for (let p = 0; p < t.partitions; p++) topics.setLagGauge(t, consumer, p)
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
        topics.removeLagGauges(t, group)
      },
    }
    subscriptions.add(subscription)
    return subscription
  }

  return {
    subscribe,
    stopAll: () => Promise.all([...subscriptions].map((s) => s.stop())),
  }
}
