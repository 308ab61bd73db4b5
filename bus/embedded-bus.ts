// The embedded bus: one process, durable on local disk (embedded-storage.ts). Keys are hashed onto
// partitions (partition-for-key.ts); each consumer group has a committed position per partition.
// - publish: records queued in the same event-loop turn, and the consumers' offset commits, are written
//   together and synced off the event loop (embedded-group-commit.ts); each publish() resolves once its
//   records are on disk and rejects, keeping none, otherwise. Consumers see records only once they are on
//   disk.
// - subscribe: embedded-subscriptions.ts (one subscription per group and topic in a process) and
//   embedded-consumer.ts (batches of one partition, commit after handle(), redelivery with backoff); a
//   durable publish wakes the topic's consumers at once, and hands them the published values themselves
//   while they keep up (recent-records.ts), rather than rows to read back and parse.
// - retention (embedded-retention.ts) deletes records older than retentionMs that every known group has
//   committed past.
// - close: what is queued is written, every subscription stops after its batch in flight (their last
//   commits written too), then the file is closed.
import { errorFieldsOf, NerveError } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { Bus, BusRecord, Topic } from './bus.ts'
import { startGroupCommit } from './embedded-group-commit.ts'
import { startRetention } from './embedded-retention.ts'
import { type AppendRow, openEmbeddedStorage } from './embedded-storage.ts'
import { createEmbeddedSubscriptions } from './embedded-subscriptions.ts'
import { loadEmbeddedTopics } from './embedded-topics.ts'
import { partitionForKey } from './partition-for-key.ts'
import { Unparsed } from './recent-records.ts'
import { storedRecordJson } from './record-json.ts'
import { withStorage } from './storage-error.ts'

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
  /** Not ok from a write that failed (a full disk, an I/O error) until one succeeds: ingest answers 507/503. */
  readiness(): { ok: boolean; detail?: string }
}

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
  const storage = openEmbeddedStorage(config.dataDir, { maxBytes: config.maxBytes })
  const topics = loadEmbeddedTopics(storage, config.partitions, { log, gauges: { retained, lag } })
  const groupCommit = startGroupCommit(storage, { topics, log, telemetry, now })
  const subscriptions = createEmbeddedSubscriptions(storage, {
    topics,
    groupCommit,
    log,
    telemetry,
    maxBatch: config.maxBatch,
  })
  let closing: Promise<void> | undefined
  const retention = startRetention(storage, {
    topics,
    retentionMs: config.retentionMs,
    deletedTotal,
    log,
    telemetry,
    now,
    closing: () => closing !== undefined,
  })
  const closedError = () => new NerveError('BUS_CLOSED', 'The bus is closed.')

  const publish = async <T>(topic: Topic<T>, records: readonly BusRecord<T>[]): Promise<void> => {
    if (closing) throw closedError()
    if (records.length === 0) return
    const t = withStorage('creating a topic', () => topics.get(topic.name))
    // A record with a head and its text is kept unparsed (recent-records.ts): its value is not read here.
    const values =
      t.valueReaders > 0
        ? records.map((record): unknown =>
            record.head !== undefined && record.text !== undefined
              ? new Unparsed(record.head, record.text)
              : record.value,
          )
        : undefined
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
        // Only with the text it describes (a record serialized here has none).
        rawSpan: record.text === undefined ? undefined : record.rawSpan,
      }
    })
    return groupCommit.append(t, rows, values, bytes)
  }

  const close = (): Promise<void> => {
    closing ??= (async () => {
      retention.stopTimer()
      groupCommit.stopProbing()
      await groupCommit.drain()
      await subscriptions.stopAll()
      await retention.sweeping()
      await groupCommit.drain()
      await storage.close()
      log.info({ file: storage.file }, 'Bus closed.')
    })()
    return closing
  }

  const readiness = () => {
    const failing = groupCommit.failing()
    if (!failing) return { ok: true }
    const { error_code, sqlite_code } = errorFieldsOf(failing.error)
    const codes = sqlite_code ? `${error_code}, ${sqlite_code}` : error_code
    const writes = failing.writes === 1 ? '1 write' : `${failing.writes} writes`
    return {
      ok: false,
      detail: `${writes} in a row failed (${codes}); publishes are refused until a write succeeds`,
    }
  }

  log.info({ file: storage.file, topics: [...topics.all()].length }, 'Bus opened.')
  return {
    file: storage.file,
    publish,
    subscribe: async (topic, group, handle, options = {}) => {
      if (closing) throw closedError()
      return subscriptions.subscribe(topic, group, handle, options)
    },
    partitionsOf: (topic) => topics.partitionsOf(topic.name),
    sweepRetention: retention.sweepRetention,
    readiness,
    close,
  }
}
