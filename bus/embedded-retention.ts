// The embedded bus's retention: deletes the records older than retentionMs that every known group has
// committed past, on a timer (a tenth of the retention, between 1 s and 5 min) or when asked; one sweep at
// a time, none once the bus closes.
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import type { Logger } from '../runtime/logger.ts'
import type { ComponentTelemetry, Metrics } from '../runtime/metrics.ts'
import type { EmbeddedStorage } from './embedded-storage.ts'
import type { EmbeddedTopics, TopicState } from './embedded-topics.ts'
import { storageError } from './storage-error.ts'

export type Retention = {
  /** Runs retention now; resolves to the number of records deleted (0 once the bus closes). */
  sweepRetention(): Promise<number>
  /** No sweep starts on the timer any more. */
  stopTimer(): void
  /** The sweep in progress, if any. */
  sweeping(): Promise<number> | undefined
}

const deleteChunk = 5_000

export function startRetention(
  storage: EmbeddedStorage,
  deps: {
    topics: EmbeddedTopics
    retentionMs: number
    /** nerve_bus_retention_deleted_records_total{topic} */
    deletedTotal: ReturnType<Metrics['counter']>
    log: Logger
    telemetry: ComponentTelemetry
    now: () => number
    closing: () => boolean
  },
): Retention {
  const { topics, log, telemetry, closing } = deps
  let sweeping: Promise<number> | undefined

  /**
   * Deletes, chunk by chunk, the old records every known group has committed; stops at the first young one.
   * The groups' positions are read again before each chunk: a group that joins during the turn between two
   * chunks starts at the first record left (embedded-subscriptions.ts, joinGroup) and holds retention from there.
   */
  const sweepTopic = async (t: TopicState, cutoff: number): Promise<number> => {
    let deleted = 0
    for (let p = 0; p < t.partitions; p++) {
      let low = t.lows[p] ?? 0
      for (;;) {
        const committed = storage.minCommitted(t.id, p) ?? t.heads[p] ?? 0
        if (low >= committed || closing()) break
        const chunkEnd = Math.min(committed, low + deleteChunk)
        const young = storage.firstPublishedSince(t.id, p, cutoff, low, chunkEnd)
        const upTo = young ?? chunkEnd
        if (upTo > low) {
          deleted += storage.deleteBelow(t.id, p, upTo)
          t.lows[p] = upTo
          topics.setRetainedGauge(t, p)
        }
        if (young !== undefined) break
        low = upTo
        await yieldToLoop()
      }
    }
    if (deleted > 0) deps.deletedTotal.inc({ topic: t.name }, deleted)
    return deleted
  }

  const sweep = async (): Promise<number> => {
    const cutoff = deps.now() - deps.retentionMs
    let deleted = 0
    try {
      for (const t of topics.all()) deleted += await sweepTopic(t, cutoff)
    } catch (err) {
      const error = storageError(err, 'deleting old records')
      telemetry.error(error.code, 'retention')
      log.warn({ error_code: error.code, err }, 'Retention failed; it will run again.')
    }
    if (deleted > 0) log.info({ deleted }, 'Deleted records past retention.')
    return deleted
  }
  const sweepRetention = (): Promise<number> => {
    if (closing()) return Promise.resolve(0)
    sweeping ??= sweep().finally(() => {
      sweeping = undefined
    })
    return sweeping
  }
  const sweepEvery = Math.min(Math.max(deps.retentionMs / 10, 1_000), 300_000)
  const sweepTimer = setInterval(() => void sweepRetention(), sweepEvery)
  sweepTimer.unref()

  return { sweepRetention, stopTimer: () => clearInterval(sweepTimer), sweeping: () => sweeping }
}
