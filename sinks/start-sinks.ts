// Wires the sinks to the bus: the embedded store (correlations, group nerve-store; revoke outcomes, group
// nerve-store-revokes; its retention on a timer when sinks.store.retention is set; its writes on a worker
// thread, store-writer-thread.ts), the revoke dispatcher (correlations, group nerve-revoke: a batch is committed only
// once its decisions are in the outbox), the Elasticsearch indexer when sinks.elasticsearch.url is set
// (groups nerve-elasticsearch-<topic>: committed once every item is indexed or dead-lettered), and returns
// their read routes, readiness checks and one close(). Dead letters and late events are kept for the read
// API by the rejected store (groups nerve-store-dead-letters, nerve-store-late-events). One consumer group per topic: kafkajs assigns a
// group's partitions over the union of its members' topics, so a group shared by two topics would leave
// partitions with a member that never reads them.
import type { Bus, DeliveredRecord, Subscription, Topic } from '../bus/bus.ts'
import { unreadRangeOf } from '../bus/bus-port.ts'
import {
  type CorrelationHead,
  correlationsTopic,
  deadLetterTopic,
  eventsTopic,
  lateEventsTopic,
  revokeOutcomesTopic,
} from '../bus/topics.ts'
import { closeInTurn } from '../runtime/close-in-turn.ts'
import { errorFieldsOf } from '../runtime/errors.ts'
import { optionalCheck, type ReadinessCheck, type Route } from '../runtime/http-routes.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { Config, Correlation } from '../schemas/types.ts'
import { consoleRoutes } from './console-routes.ts'
import type { CorrelationItem } from './correlation-store.ts'
import type { IndexedTopic } from './elasticsearch-data-streams.ts'
import {
  createElasticsearchIndexer,
  type IndexItem,
  toDeadLetters,
  topicsToIndex,
} from './elasticsearch-indexer.ts'
import { logIncidentOpened } from './operator-log-lines.ts'
import { createRejectedStore } from './rejected-store.ts'
import { createRevokeDispatcher } from './revoke-webhook-dispatcher.ts'
import { startStoreReaderThread } from './store-reader-thread.ts'
import { type StoreWriterThread, startStoreWriterThread } from './store-writer-thread.ts'

export type SinksDeps = {
  bus: Bus
  log: Logger
  metrics: Metrics
  now: () => number
  /** The embedded bus's file: the store writer thread reads its correlations from it, not through this thread. */
  busFile?: string
}

export type Sinks = {
  routes: Route[]
  readiness: Record<string, ReadinessCheck>
  close(): Promise<void>
}

export async function startSinks(config: Config, deps: SinksDeps): Promise<Sinks> {
  const { bus } = deps
  // The store's writes run on a worker thread (the second core), and so do its reads (once the writer has
  // made the store): a read's SQLite work grows with the store, and this thread accepts ingest.
  const writer = await startStoreWriterThread(
    { data_dir: config.data_dir, commit_interval: config.sinks.store.commit_interval },
    {
      metrics: deps.metrics,
      log: deps.log,
      busFile: deps.busFile,
      onIncidentOpened: (c) => logIncidentOpened(deps.log, c),
    },
  )
  // The read API shows agents, ARNs and Falco output (command lines): open on loopback, token elsewhere.
  // Dead letters and late events too: the rejected store makes its file, the reader thread reads it.
  const rejected = createRejectedStore({ data_dir: config.data_dir }, { metrics: deps.metrics })
  const reader = await startStoreReaderThread({ data_dir: config.data_dir })
  const dispatcher = createRevokeDispatcher(
    {
      data_dir: config.data_dir,
      revoke: config.revoke,
      agents: config.agents,
      redelivery: config.bus.retention,
    },
    deps,
  )
  // The revoke dispatcher subscribes first: a bus that wakes its consumers in order (the embedded one) then
  // decides a revoke before the store's write of the same correlations, which can wait.
  const subscriptions: Subscription[] = [
    // On heads where the bus has them (correlations from the correlate thread, on the embedded bus): a
    // correlation is parsed here only for a revoke that sends it.
    await bus.subscribe(
      correlationsTopic,
      'nerve-revoke',
      (batch) =>
        dispatcher.handle(
          batch.map((r) => (r.head as CorrelationHead | undefined) ?? r.value),
          (i) => (batch[i] as DeliveredRecord<Correlation>).value,
        ),
      { heads: true },
    ),
    // On the embedded bus, as a range the writer thread reads from the bus's file (positions only cross);
    // on Kafka, as the JSON text the bus carried, a string copy to the writer. Either is stored as is.
    await bus.subscribe(
      correlationsTopic,
      'nerve-store',
      async (batch) => {
        const range = unreadRangeOf(batch)
        if (range) await writer.writeCorrelationRange(correlationsTopic.name, range)
        else await writer.writeCorrelations(batch.map((r) => r.value as CorrelationItem))
      },
      { encoded: true, unread: deps.busFile !== undefined },
    ),
    await bus.subscribe(revokeOutcomesTopic, 'nerve-store-revokes', async (batch) => {
      await writer.writeOutcomes(batch.map((r) => r.value))
    }),
    await bus.subscribe(deadLetterTopic, 'nerve-store-dead-letters', async (batch) => {
      await rejected.keepDeadLetters(batch.map((r) => r.value))
    }),
    await bus.subscribe(lateEventsTopic, 'nerve-store-late-events', async (batch) => {
      await rejected.keepLateEvents(batch.map((r) => r.value))
    }),
  ]
  dispatcher.startDelivering()
  const retention = config.sinks.store.retention
  const sweep = retention === undefined ? undefined : sweepStore(writer, retention, deps)
  // Neither the store, a revoke target nor Elasticsearch is needed to accept events: their failures
  // degrade /readyz.
  const readiness: Record<string, ReadinessCheck> = {
    correlation_store: optionalCheck(writer.readiness),
    revoke_webhooks: optionalCheck(dispatcher.readiness),
  }
  const elasticsearch = config.sinks.elasticsearch.url
    ? await startElasticsearch(config.sinks.elasticsearch, deps, subscriptions)
    : undefined
  if (elasticsearch) readiness.elasticsearch = optionalCheck(elasticsearch.checkHealth)
  deps.log.info(
    {
      component: 'sinks',
      webhooks: config.revoke.webhooks.length,
      dry_run: config.revoke.dry_run,
      elasticsearch: Boolean(elasticsearch),
    },
    'Sinks started.',
  )

  return {
    routes: [...reader.routes, ...consoleRoutes()],
    readiness,
    async close() {
      if (sweep) clearInterval(sweep)
      // The store's batches in flight are committed now, not commit_interval later: stop() waits for them.
      // A writer that died meanwhile has failed them already (the bus delivers them again): stop all the same.
      // A subscription that fails to stop still lets the threads end and the files close.
      await writer.drain().catch(() => undefined)
      await closeInTurn([
        ...subscriptions.map((subscription) => () => subscription.stop()),
        () => dispatcher.close(),
        () => elasticsearch?.close(),
        () => reader.close(),
        () => writer.close(),
        () => rejected.close(),
      ])
    },
  }
}

/**
 * sinks.store.retention: every tenth of the retention (between a minute and an hour), the store deletes the
 * incidents whose last correlation is older than it. A failure is logged and counted; the next sweep retries.
 */
function sweepStore(writer: StoreWriterThread, retention: number, deps: SinksDeps): NodeJS.Timeout {
  const every = Math.min(Math.max(retention / 10, 60_000), 3_600_000)
  const timer = setInterval(() => {
    writer.deleteBefore(deps.now() - retention).then(
      (deleted) => {
        if (deleted.incidents + deleted.revoke_outcomes > 0) {
          deps.log.info({ component: 'correlation_store', ...deleted }, 'Deleted incidents past retention.')
        }
      },
      (err: unknown) => {
        deps.log.warn({ component: 'correlation_store', ...errorFieldsOf(err), err }, 'Retention failed.')
      },
    )
  }, every)
  timer.unref()
  return timer
}

/** One subscription per indexed topic; items Elasticsearch rejects for good go to the dead-letter topic. */
async function startElasticsearch(
  config: Config['sinks']['elasticsearch'],
  deps: SinksDeps,
  subscriptions: Subscription[],
) {
  const indexer = createElasticsearchIndexer(config, { log: deps.log, metrics: deps.metrics, now: deps.now })
  const topics: Record<IndexedTopic, Topic<IndexItem['value']>> = {
    events: eventsTopic,
    correlations: correlationsTopic,
    revoke_outcomes: revokeOutcomesTopic,
  }
  for (const name of topicsToIndex(config)) {
    const group = `nerve-elasticsearch-${name.replace('_', '-')}`
    const subscription = await deps.bus.subscribe(topics[name], group, async (batch) => {
      const items = batch.map((r) => ({ topic: name, value: r.value }) as IndexItem)
      const { failed } = await indexer.writeBatch(items)
      if (failed.length === 0) return
      const letters = toDeadLetters(items, failed, deps.now())
      await deps.bus.publish(
        deadLetterTopic,
        letters.map((value, i) => ({ key: batch[failed[i]?.index ?? 0]?.key ?? '', value })),
      )
    })
    subscriptions.push(subscription)
  }
  return indexer
}
