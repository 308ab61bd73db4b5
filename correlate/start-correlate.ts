// The correlate stage: reads normalized events as group `nerve-correlate`, feeds one pure correlator per
// partition in bus order, publishes correlations and late events, then checkpoints each touched partition
// (state + last offset) durably before the handler resolves, so the bus commits only after. On restart (or
// when a partition is assigned) the checkpoint is restored and records at or below its offset are skipped:
// a kill -9 anywhere re-publishes at most the same correlation ids (downstream dedups by id).
import { join } from 'node:path'
import type { Bus, DeliveredRecord } from '../bus/bus.ts'
import { correlationsTopic, eventsTopic, type LateEvent, lateEventsTopic } from '../bus/topics.ts'
import { errorCodeOf } from '../runtime/errors.ts'
import type { ReadinessCheck } from '../runtime/http-server.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { Config, Correlation, NormalizedEvent } from '../schemas/types.ts'
import { type CheckpointStore, createSqliteCheckpointStore } from './checkpoint-store.ts'
import { createCorrelateTelemetry } from './correlate-telemetry.ts'
import { type Correlator, type CorrelatorStats, createCorrelator } from './correlator.ts'
import { correlatorConfigOf } from './correlator-config.ts'

export const correlateGroup = 'nerve-correlate'

export type CorrelateDeps = {
  bus: Bus
  log: Logger
  metrics: Metrics
  /** Default: config.data_dir. */
  dataDir?: string
  /**
   * Default: a SQLite file `correlate-checkpoints.sqlite` under the data dir. With several correlate
   * instances on Kafka, pass createKeyValueCheckpointStore(<compacted-topic KeyValueLog>, checkpointKey).
   */
  checkpoints?: CheckpointStore
}

export type CorrelateStage = {
  close(): Promise<void>
  readiness: Record<string, ReadinessCheck>
}

type PartitionState = { correlator: Correlator; offset: number }

/** The key of a partition's checkpoint in a shared key-value log. */
export const checkpointKey = (partition: number) => `${correlateGroup}/${eventsTopic.name}/${partition}`

export async function startCorrelate(config: Config, deps: CorrelateDeps): Promise<CorrelateStage> {
  const correlatorConfig = correlatorConfigOf(config)
  const log = deps.log.child({ component: 'correlator' })
  const telemetry = createCorrelateTelemetry(deps.metrics)
  const ownStore = deps.checkpoints === undefined
  const store =
    deps.checkpoints ??
    createSqliteCheckpointStore(join(deps.dataDir ?? config.data_dir, 'correlate-checkpoints.sqlite'))
  const partitions = new Map<number, PartitionState>()
  let subscribed = false
  let closed = false

  const load = async (partition: number): Promise<PartitionState> => {
    const checkpoint = await store.load(partition)
    const state = {
      correlator: createCorrelator(correlatorConfig, checkpoint?.state, { trackChanges: true }),
      offset: checkpoint?.offset ?? -1,
    }
    partitions.set(partition, state)
    log.debug({ partition, offset: state.offset }, 'Restored partition state.')
    return state
  }

  const handle = async (batch: readonly DeliveredRecord<NormalizedEvent>[]) => {
    const touched = new Map<number, { state: PartitionState; before: CorrelatorStats }>()
    const correlations: { key: string; value: Correlation }[] = []
    const late: { key: string; value: LateEvent }[] = []
    let confirmations = 0
    const flooded = new Set<string>()
    try {
      for (const record of batch) {
        let part = touched.get(record.partition)
        if (!part) {
          const state = partitions.get(record.partition) ?? (await load(record.partition))
          part = { state, before: state.correlator.stats() }
          touched.set(record.partition, part)
        }
        const { state } = part
        if (record.offset <= state.offset) {
          telemetry.skipped(1)
          continue
        }
        const event = record.value
        const streamTime = state.correlator.streamTime()
        if (streamTime !== null) telemetry.lag(event.side, streamTime - event.time)
        const result = state.correlator.accept(event)
        state.offset = record.offset
        for (const c of result.correlations) correlations.push({ key: c.agent.id, value: c })
        if (result.late) late.push({ key: event.agent.id, value: result.late })
        if (result.flood) flooded.add(event.agent.id)
        if (result.confirmation) {
          confirmations++
          log.debug(
            {
              event_id: event.id,
              revoke_event_id: result.confirmation.revoke_event_id,
              agent: event.agent.id,
            },
            'Denied call confirms an earlier revoke.',
          )
        }
      }
      if (correlations.length > 0) await deps.bus.publish(correlationsTopic, correlations)
      if (late.length > 0) await deps.bus.publish(lateEventsTopic, late)
      for (const [partition, { state }] of touched) {
        const { correlator } = state
        await store.save(partition, {
          offset: state.offset,
          changes: correlator.takeChanges(),
          snapshot: () => correlator.snapshot(),
        })
      }
    } catch (err) {
      // In-memory state ran ahead of what is durable: drop it, the redelivery restores the checkpoint.
      for (const partition of touched.keys()) partitions.delete(partition)
      telemetry.error(errorCodeOf(err))
      log.warn({ error_code: errorCodeOf(err), err }, 'Correlation batch failed; it will be redelivered.')
      throw err
    }
    if (confirmations > 0) log.info({ count: confirmations }, 'Denied calls confirmed earlier revokes.')
    // Ids, never payloads; at most 20 named per batch.
    if (flooded.size > 0)
      log.warn(
        { agents: [...flooded].slice(0, 20), count: flooded.size },
        'Agents went over their per-agent cap: repeats of their alerts are being shed.',
      )
    telemetry.batch(batch.length, correlations.length, late.length, touched, partitions)
  }

  const subscription = await deps.bus.subscribe(eventsTopic, correlateGroup, handle, {
    onAssign: async (assigned) => {
      for (const partition of assigned) if (!partitions.has(partition)) await load(partition)
    },
    onRevoke: async (revoked) => {
      for (const partition of revoked) partitions.delete(partition)
      telemetry.gauges(partitions)
    },
  })
  subscribed = true
  log.info({ rules: correlatorConfig.rules.length, group: correlateGroup }, 'Correlator started.')

  return {
    readiness: {
      correlator: () =>
        subscribed && !closed ? { ok: true } : { ok: false, detail: 'not consuming events' },
    },
    close: async () => {
      if (closed) return
      closed = true
      await subscription.stop()
      if (ownStore) await store.close()
    },
  }
}
