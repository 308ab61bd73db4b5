// Bulk-indexes bus batches into the nerve data streams (sinks.md §0–1). One writeBatch per bus batch:
// - every item becomes a bulk `create` with a deterministic _id (event id, correlation id, outcome id);
// - item 200/201 is indexed; 409 means it is already there (a replay) and counts as indexed;
// - item 429/5xx, whole-request 429/5xx and network errors are retried with capped, jittered backoff;
// - whole-request 413 splits the request in halves (one document alone over the limit is final);
// - any other item 4xx is final: returned in `failed` with Elasticsearch's reason, for the dead-letter topic.
// Health: not ok while requests fail (unreachable, refused), and from a batch that gave up on items
// answered 429/5xx in a 200 (the cluster takes requests but not documents) until those are indexed.
//
// Contract with the caller (the bus handler): writeBatch RESOLVES only when every item is final, i.e.
// indexed, already there, or listed in `failed` (not retriable; dead-letter those, then commit). It REJECTS
// (NerveError SINK_UNAVAILABLE) when items were still retriable after `max_retries` rounds, or Elasticsearch
// refused the request as a whole (401/403, a wrong URL: retriable false, an operator must act): commit
// nothing, let the bus deliver the batch again (409s make that harmless).
import type { Client } from '@elastic/elasticsearch'
import type { DeadLetter } from '../bus/topics.ts'
import { NerveError } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { ElasticsearchConfig } from '../schemas/types.ts'
import {
  type BulkItems,
  backoffMs,
  chunksOf,
  errorTypeOf,
  failedOutcome,
  type IndexItem,
  itemOutcome,
  type Operation,
  type Outcome,
  operationOf,
  resultLabels,
} from './elasticsearch-bulk-operations.ts'
import { createElasticsearchClient, reasonOf, statusOf } from './elasticsearch-client.ts'
import type { IndexedTopic } from './elasticsearch-data-streams.ts'

export type { IndexItem }

export type FailedItem = { index: number; error: NerveError }

export type ElasticsearchIndexer = {
  /** Resolves when every item is final; `failed` lists the items Elasticsearch rejected for good. */
  writeBatch(items: readonly IndexItem[]): Promise<{ failed: FailedItem[] }>
  /**
   * For /readyz: false while Elasticsearch is unreachable or refuses the credentials, and from a batch
   * whose items still failed after every retry until those documents are indexed (or rejected for good).
   */
  checkHealth(): { ok: boolean; detail?: string }
  close(): Promise<void>
}

export type ElasticsearchIndexerDeps = {
  log: Logger
  metrics: Metrics
  now?: () => number
  /** An existing client (tests, or a shared one); the indexer then leaves closing it to the owner. */
  client?: Client
  /** Waits between retry rounds (tests pass one that records and resolves at once). */
  sleep?: (ms: number) => Promise<void>
  random?: () => number
}

export const component = 'elasticsearch_indexer'

/** The topics to subscribe to: events only when `index_events` is on. */
export const topicsToIndex = (config: ElasticsearchConfig): IndexedTopic[] =>
  config.index_events ? ['events', 'correlations', 'revoke_outcomes'] : ['correlations', 'revoke_outcomes']

export function createElasticsearchIndexer(
  config: ElasticsearchConfig,
  deps: ElasticsearchIndexerDeps,
): ElasticsearchIndexer {
  const client = deps.client ?? createElasticsearchClient(config)
  const log = deps.log.child({ component })
  const telemetry = deps.metrics.component(component)
  const documents = deps.metrics.counter(
    'nerve_elasticsearch_documents_total',
    'Bulk item results by data stream: created, duplicate (409, already indexed), retried, rejected.',
    ['data_stream', 'result'],
  )
  const duration = deps.metrics.histogram(
    'nerve_elasticsearch_bulk_duration_seconds',
    'Time of one bulk request, failed ones included.',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  )
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)))
  const random = deps.random ?? Math.random
  const now = deps.now ?? Date.now
  /** The last bulk request's: answered, or not (unreachable, refused). */
  let health: { ok: boolean; detail?: string } = { ok: true }
  /**
   * The documents a batch gave up on (still 429/5xx after every retry), until a later round makes them
   * final: a batch of other documents indexed meanwhile says nothing of these. Bounded by what the bus
   * holds in flight (a partition whose batch failed is delivered that batch again, nothing past it), and
   * capped all the same. Each is forgotten unindexedForgetMs after it was last given up on: on Kafka a
   * rebalance may move its partition to another instance, which then delivers it, and this one would
   * otherwise say degraded until it restarts. Given up on again meanwhile, it stays.
   */
  const unindexed = new Map<string, number>()
  const stillUnindexed = (): number => {
    const before = now() - unindexedForgetMs
    // In the order they were given up on (each is moved last when given up on again).
    for (const [key, at] of unindexed) {
      if (at > before) break
      unindexed.delete(key)
    }
    return unindexed.size
  }
  /** How the last batch that gave up ended: `item status 429: 4, 503: 4 after 3 attempts`. */
  let lastGaveUp = ''

  /** One bulk request; a 413 splits it. Throws when Elasticsearch refuses the request as a whole. */
  const send = async (ops: readonly Operation[]): Promise<Outcome[]> => {
    let response: BulkItems
    const started = now()
    try {
      response = (await client.bulk({
        operations: ops.flatMap((op) => [op.action, op.source]),
        filter_path: 'errors,items.*.error,items.*.status',
      })) as BulkItems
    } catch (err) {
      return requestFailed(ops, err)
    } finally {
      duration.observe((now() - started) / 1000)
    }
    health = { ok: true }
    return ops.map((op, i) => {
      const item = response.items?.[i]
      const result = item && Object.values(item)[0]
      if (!result) return { result: 'retry', reason: 'no result for this item' }
      return itemOutcome(op, result.status, result.error)
    })
  }

  const requestFailed = async (ops: readonly Operation[], err: unknown): Promise<Outcome[]> => {
    const status = statusOf(err)
    const reason = reasonOf(err)
    if (status === 413) {
      telemetry.error('PAYLOAD_TOO_LARGE', 'bulk')
      if (ops.length === 1) {
        return [
          failedOutcome('PAYLOAD_TOO_LARGE', `Document is larger than Elasticsearch accepts: ${reason}`),
        ]
      }
      const half = Math.ceil(ops.length / 2)
      log.warn({ documents: ops.length }, 'Bulk request too large; splitting it.')
      return [...(await send(ops.slice(0, half))), ...(await send(ops.slice(half)))]
    }
    if (status === undefined || status === 429 || status >= 500) {
      telemetry.error('SINK_UNAVAILABLE', 'bulk')
      health = { ok: false, detail: `Elasticsearch unavailable: ${reason}` }
      return ops.map(() => ({ result: 'retry', reason }))
    }
    // 401, 403 and any other refusal of the request as a whole: configuration (credentials, URL, proxy),
    // not data. Dead-lettering the items would be wrong; stop and let an operator look.
    telemetry.error('SINK_UNAVAILABLE', 'bulk')
    const what = status === 401 || status === 403 ? 'refused the credentials' : 'refused the bulk request'
    health = { ok: false, detail: `Elasticsearch ${what} (HTTP ${status})` }
    log.error({ status, error_code: 'SINK_UNAVAILABLE' }, `Elasticsearch ${what}.`)
    throw new NerveError('SINK_UNAVAILABLE', `Elasticsearch ${what} (HTTP ${status}): ${reason}`)
  }

  const round = async (ops: readonly Operation[]): Promise<Outcome[]> => {
    const outcomes: Outcome[] = []
    for (const chunk of chunksOf(ops)) outcomes.push(...(await send(chunk)))
    return outcomes
  }

  const writeBatch = async (items: readonly IndexItem[]): Promise<{ failed: FailedItem[] }> => {
    telemetry.received(items.length)
    const failed: FailedItem[] = []
    let pending: Operation[] = []
    let skipped = 0
    items.forEach((item, index) => {
      if (item.topic === 'events' && !config.index_events) {
        skipped++
        return
      }
      try {
        pending.push(operationOf(item, index, config.namespace, now()))
      } catch (cause) {
        const error = new NerveError('INPUT_INVALID', `Cannot build the document: ${String(cause)}`, {
          cause,
        })
        failed.push({ index, error })
      }
    })
    if (skipped > 0) telemetry.discarded(skipped, 'events_disabled')
    if (failed.length > 0) telemetry.error('INPUT_INVALID', 'build', failed.length)
    let stored = 0
    let lastReason = ''
    /** Per item status (429, 503, …) of the items the last round left to retry; 0: the request failed. */
    let statuses = new Map<number, number>()
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > config.max_retries) {
        const at = now()
        for (const op of pending) {
          const key = documentKey(op)
          unindexed.delete(key)
          if (unindexed.size < maxUnindexed) unindexed.set(key, at)
        }
        lastGaveUp = `${statusCounts(statuses)} after ${attempt} attempts`
        throw gaveUp(pending.length, attempt, lastReason)
      }
      if (attempt > 0) {
        log.warn({ count: pending.length, attempt, reason: lastReason }, 'Retrying documents.')
        await sleep(backoffMs(attempt - 1, random))
      }
      const outcomes = await round(pending)
      const retry: Operation[] = []
      statuses = new Map()
      outcomes.forEach((outcome, i) => {
        const op = pending[i] as Operation
        documents.inc({ data_stream: op.stream, result: resultLabels[outcome.result] })
        if (outcome.result === 'retry') {
          // Rebuilt, so event.ingested is when it is written: Elastic's rules look back over it.
          retry.push(operationOf(items[op.index] as IndexItem, op.index, config.namespace, now()))
          lastReason = outcome.reason
          statuses.set(outcome.status ?? 0, (statuses.get(outcome.status ?? 0) ?? 0) + 1)
          return
        }
        unindexed.delete(documentKey(op))
        if (outcome.result === 'failed') failed.push({ index: op.index, error: outcome.error })
        else stored++
      })
      pending = retry
    }
    telemetry.sent(stored)
    const rejected = failed.filter((f) => f.error.code !== 'INPUT_INVALID')
    if (rejected.length > 0) {
      for (const code of new Set(rejected.map((f) => f.error.code))) {
        telemetry.error(code, 'index', rejected.filter((f) => f.error.code === code).length)
      }
      log.warn(
        {
          error_code: rejected[0]?.error.code,
          count: rejected.length,
          type: errorTypeOf(rejected[0]?.error),
        },
        'Elasticsearch rejected documents; they go to the dead-letter topic.',
      )
    }
    return { failed: failed.sort((a, b) => a.index - b.index) }
  }

  const gaveUp = (count: number, attempts: number, reason: string): NerveError => {
    log.error(
      { error_code: 'SINK_UNAVAILABLE', count, attempts, reason },
      'Documents still not indexed after every retry; the batch will be delivered again.',
    )
    return new NerveError(
      'SINK_UNAVAILABLE',
      `${count} documents still not indexed after ${attempts} attempts (${reason}); retry the batch.`,
      { retriable: true, details: { pending: count } },
    )
  }

  return {
    writeBatch,
    checkHealth: () =>
      !health.ok || stillUnindexed() === 0
        ? health
        : {
            ok: false,
            detail: `${unindexed.size} documents not indexed after every retry (last: ${lastGaveUp}); ok again once they are`,
          },
    close: async () => {
      if (!deps.client) await client.close()
    },
  }
}

/** Documents given up on that degrade the health at most; past it, the others are not tracked. */
const maxUnindexed = 100_000
/**
 * How long a document given up on degrades the health without being given up on again: ten minutes, far
 * past a redelivery's backoff (the bus delivers a failed batch again within seconds), so only a document
 * this instance no longer receives (its partition moved away in a rebalance) is forgotten.
 */
export const unindexedForgetMs = 10 * 60_000
const documentKey = (op: Operation) => `${op.stream}/${op.id}`

/** `item status 429: 4, 503: 4`, and `request failed: n` for items of requests that got no answer of 200. */
function statusCounts(statuses: ReadonlyMap<number, number>): string {
  const items = [...statuses]
    .filter(([status]) => status !== 0)
    .sort(([a], [b]) => a - b)
    .map(([status, count]) => `${status}: ${count}`)
  const parts = items.length > 0 ? [`item status ${items.join(', ')}`] : []
  const unanswered = statuses.get(0)
  if (unanswered) parts.push(`request failed: ${unanswered}`)
  return parts.join('; ')
}

/** Dead letters for the items writeBatch returned as failed (to publish on deadLetterTopic). */
export function toDeadLetters(
  items: readonly IndexItem[],
  failed: readonly FailedItem[],
  receivedAt: number,
): DeadLetter[] {
  return failed.map(({ index, error }) => ({
    component,
    error_code: error.code,
    reason: error.message,
    index,
    received_at: receivedAt,
    original: JSON.stringify(items[index]?.value),
    original_encoding: 'utf8',
  }))
}
