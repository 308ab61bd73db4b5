// The Elasticsearch sink on the bus: the indexer subscribed, as consumer group `nerve-elasticsearch`, to
// every topic it indexes (events only with index_events). Per batch: index it, publish the items
// Elasticsearch rejected for good to the dead-letter topic, and only then resolve, which commits the batch.
// When the indexer hands a batch back (retries used up, or Elasticsearch refusing the request), the handler
// pauses with backoff and rejects: nothing is committed and the bus delivers the batch again.
import type { Client } from '@elastic/elasticsearch'
import type { Bus, DeliveredRecord, Subscription, Topic } from '../bus/bus.ts'
import {
  correlationsTopic,
  type DeadLetter,
  deadLetterTopic,
  eventsTopic,
  revokeOutcomesTopic,
} from '../bus/topics.ts'
import type { ReadinessCheck } from '../runtime/http-server.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { ElasticsearchConfig } from '../schemas/types.ts'
import { backoffMs, type IndexItem } from './elasticsearch-bulk-operations.ts'
import type { IndexedTopic } from './elasticsearch-data-streams.ts'
import { createElasticsearchIndexer, toDeadLetters, topicsToIndex } from './elasticsearch-indexer.ts'

export type ElasticsearchSinkDeps = {
  bus: Bus
  log: Logger
  metrics: Metrics
  now: () => number
  client?: Client
  sleep?: (ms: number) => Promise<void>
}

export type ElasticsearchSink = { readiness: ReadinessCheck; close(): Promise<void> }

export const consumerGroup = 'nerve-elasticsearch'

const topics: Record<IndexedTopic, Topic<IndexItem['value']>> = {
  events: eventsTopic,
  correlations: correlationsTopic,
  revoke_outcomes: revokeOutcomesTopic,
}

export async function startElasticsearchSink(
  config: ElasticsearchConfig,
  deps: ElasticsearchSinkDeps,
): Promise<ElasticsearchSink> {
  const indexer = createElasticsearchIndexer(config, deps)
  const stopping = new AbortController()
  let handedBack = 0

  /** Waits before a handed-back batch is delivered again; cut short by close(). */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      if (deps.sleep) return void deps.sleep(ms).then(resolve)
      const timer = setTimeout(resolve, ms)
      stopping.signal.addEventListener('abort', () => {
        clearTimeout(timer)
        resolve()
      })
    })

  const handler = (topic: IndexedTopic) => async (batch: readonly DeliveredRecord<IndexItem['value']>[]) => {
    const items = batch.map((r) => ({ topic, value: r.value }) as IndexItem)
    const { failed } = await indexer.writeBatch(items).catch(async (err: unknown) => {
      await pause(backoffMs(handedBack++, Math.random))
      throw err
    })
    handedBack = 0
    if (failed.length === 0) return
    const letters = toDeadLetters(items, failed, deps.now())
    await deps.bus.publish(
      deadLetterTopic,
      failed.map((f, i) => ({ key: batch[f.index]?.key ?? '', value: letters[i] as DeadLetter })),
    )
  }

  const subscriptions: Subscription[] = []
  for (const topic of topicsToIndex(config)) {
    subscriptions.push(await deps.bus.subscribe(topics[topic], consumerGroup, handler(topic)))
  }
  deps.log.info(
    { component: 'elasticsearch_indexer', topics: topicsToIndex(config), namespace: config.namespace },
    'Elasticsearch sink started.',
  )
  return {
    readiness: () => indexer.checkHealth(),
    async close() {
      stopping.abort()
      for (const subscription of subscriptions) await subscription.stop()
      await indexer.close()
    },
  }
}
