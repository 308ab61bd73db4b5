// The correlate stage: reads normalized events as group `nerve-correlate`, feeds one pure correlator per
// partition in bus order, and publishes correlations and late events before the handler resolves. It saves
// each partition's checkpoint (state + last offset) durably every so many records or so much time
// (correlation.checkpoint, checkpoint-cadence.ts; also when the stream pauses or the stage stops, but not
// when Kafka revokes a partition: its next owner may already be saving), and the handler resolves with the
// partition's commit bound: one past the offset the last durable checkpoint includes, so the bus never
// commits past it. A save outside a batch (the stream paused) hands the bus its new bound at once
// (Subscription.advance): no batch may come to carry it, and the group's commit would stay behind; so does
// a clean stop's final save, made between the subscription's drain() and its stop(). On restart (or when
// a partition is assigned, or after a failed batch: the bus then delivers again from that bound) the
// checkpoint is restored and records at or below its offset are skipped: a kill -9 anywhere re-publishes
// at most the same correlation ids (downstream dedups by id).
import { join } from 'node:path'
import type { Bus, DeliveredRecord, Handled } from '../bus/bus.ts'
import {
  correlationHead,
  correlationsTopic,
  eventsTopic,
  type LateEvent,
  lateEventsTopic,
} from '../bus/topics.ts'
import { errorCodeOf, errorFieldsOf, NerveError } from '../runtime/errors.ts'
import type { ReadinessCheck } from '../runtime/http-routes.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import { settlesWithin } from '../runtime/settles-within.ts'
import { terminalLine } from '../runtime/terminal-text.ts'
import type { Config, Correlation, NormalizedEvent } from '../schemas/types.ts'
import { type CheckpointCadence, type SaveProgress, saveDue } from './checkpoint-cadence.ts'
import { type CheckpointStore, createSqliteCheckpointStore } from './checkpoint-store.ts'
import { createCorrelateTelemetry } from './correlate-telemetry.ts'
import { createCorrelator } from './correlator.ts'
import { correlatorConfigOf } from './correlator-config.ts'
import type { Correlator, CorrelatorStats } from './correlator-types.ts'

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
  /** Wall clock for the checkpoint cadence. Default: Date.now. */
  now?: () => number
}

export type CorrelateStage = {
  close(): Promise<void>
  readiness: Record<string, ReadinessCheck>
}

type PartitionState = SaveProgress & {
  correlator: Correlator
  /** A batch of the partition is being handled: a paused stream's save leaves it to that batch. */
  handling: boolean
  /** A save outside a batch (the stream paused) in progress: the next batch waits for it. */
  saving?: Promise<void>
  /** That save failed: state ran ahead of what is durable, so the next batch fails and is redelivered. */
  lost?: unknown
}

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
  const now = deps.now ?? Date.now
  const cadence: CheckpointCadence = {
    maxRecords: config.correlation.checkpoint.max_records,
    maxIntervalMs: config.correlation.checkpoint.max_interval,
  }
  const partitions = new Map<number, PartitionState>()
  let subscribed = false
  let closed = false
  /** The final save outlasted the stop's budget: it goes on running, but writes nothing more. */
  let abandoned = false
  let timer: NodeJS.Timeout | undefined
  /** The subscription's ownership (Kafka moves partitions): a save writes only while it holds. */
  let owns = (_partition: number) => true
  /** Hands the bus a commit bound outside a batch (Subscription.advance), where the bus takes one. */
  let advance = (_partition: number, _commit: number): Promise<void> => Promise.resolve()

  const load = async (partition: number): Promise<PartitionState> => {
    const checkpoint = await store.load(partition)
    const offset = checkpoint?.offset ?? -1
    const state: PartitionState = {
      correlator: createCorrelator(correlatorConfig, checkpoint?.state, { trackChanges: true }),
      offset,
      saved: offset,
      savedAt: now(),
      handling: false,
    }
    partitions.set(partition, state)
    log.debug({ partition, offset: state.offset }, 'Restored partition state.')
    return state
  }

  /**
   * True while `state` is still this member's state of `partition`: one revoked and restored meanwhile
   * (the member lost the partition, or rejoined its group after an eviction) was handled elsewhere in
   * between, so a save of the old state must write nothing more; nor does a final save once abandoned.
   */
  const holds = (partition: number, state: PartitionState) =>
    !abandoned && owns(partition) && partitions.get(partition) === state

  /** Makes what the partition handled so far durable; the bus may then commit up to it. */
  const save = async (partition: number, state: PartitionState) => {
    const { correlator, offset } = state
    await store.save(partition, {
      offset,
      changes: correlator.takeChanges(),
      snapshot: () => correlator.snapshot(),
      owned: () => holds(partition, state),
    })
    state.saved = Math.max(state.saved, offset)
    state.savedAt = now()
  }

  /**
   * Saves, outside any batch, what waits past max_interval (or everything, when stopping); returns the
   * commits of the new bounds, which the bus may still be making.
   */
  const flush = async (which: readonly number[], all: boolean) => {
    const saves: Promise<void>[] = []
    const commits: Promise<void>[] = []
    for (const partition of which) {
      const state = partitions.get(partition)
      if (!state || state.handling || state.saving || state.lost !== undefined) continue
      // Moving to another member (its onRevoke comes after the rebalance): the next owner saves it.
      if (!owns(partition)) continue
      if (!(all ? state.offset > state.saved : saveDue(cadence, state, now()))) continue
      const saving = save(partition, state).then(
        () => {
          state.saving = undefined
          // No batch may come to carry the new bound (the partition went quiet): it goes to the bus now.
          if (holds(partition, state)) commits.push(advance(partition, state.saved + 1))
        },
        (err) => {
          state.saving = undefined
          state.lost = err
          if (!holds(partition, state)) {
            log.info({ partition }, 'Partition moved during a checkpoint; its new owner saves it.')
            return
          }
          telemetry.error(errorCodeOf(err))
          log.warn(
            { ...errorFieldsOf(err), partition, err },
            'Saving a correlator checkpoint failed; the records since the last one will be handled again.',
          )
        },
      )
      state.saving = saving
      saves.push(saving)
    }
    await Promise.all(saves)
    return commits
  }

  /** While a partition has records its checkpoint lacks, look again every max_interval. */
  const arm = () => {
    if (timer || closed || cadence.maxIntervalMs <= 0) return
    if (![...partitions.values()].some((s) => s.offset > s.saved)) return
    timer = setTimeout(() => {
      timer = undefined
      void flush([...partitions.keys()], false).then(arm)
    }, cadence.maxIntervalMs)
    timer.unref()
  }

  const handle = async (batch: readonly DeliveredRecord<NormalizedEvent>[]): Promise<Handled> => {
    const touched = new Map<number, { state: PartitionState; before: CorrelatorStats }>()
    const correlations: { key: string; value: Correlation }[] = []
    const late: { key: string; value: LateEvent }[] = []
    let confirmations = 0
    const flooded = new Set<string>()
    /** Event ids whose copy conflicted with their first delivery (conflicting-copies.ts). */
    const conflicts: string[] = []
    try {
      for (const record of batch) {
        let part = touched.get(record.partition)
        if (!part) {
          let state = partitions.get(record.partition) ?? (await load(record.partition))
          await state.saving
          if (state.lost !== undefined) {
            partitions.delete(record.partition)
            throw new NerveError('INTERNAL', 'A correlator checkpoint failed; handling its records again.', {
              cause: state.lost,
              retriable: true,
            })
          }
          // Revoked meanwhile (Kafka), or dropped by a failure: restored again.
          if (partitions.get(record.partition) !== state) state = await load(record.partition)
          state.handling = true
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
        if (result.conflict) conflicts.push(event.id)
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
      // Each with its head, taken as the bus writes the text (in the same turn): the revoke dispatcher
      // decides on it without parsing the correlation (bus/topics.ts correlationHead).
      if (correlations.length > 0)
        await deps.bus.publish(
          correlationsTopic,
          correlations.map((r) => ({ ...r, head: correlationHead(r.value) })),
        )
      if (late.length > 0) await deps.bus.publish(lateEventsTopic, late)
      // A batch of several partitions (the bus contract says one) commits whole: every one is saved.
      const time = now()
      for (const [partition, { state }] of touched) {
        if (touched.size > 1 ? state.offset > state.saved : saveDue(cadence, state, time))
          await save(partition, state)
      }
    } catch (err) {
      // In-memory state ran ahead of what is durable: drop it; the bus delivers again from the last
      // checkpoint's offset, and the redelivery restores it.
      for (const partition of touched.keys()) partitions.delete(partition)
      telemetry.error(errorCodeOf(err))
      log.warn({ ...errorFieldsOf(err), err }, 'Correlation batch failed; it will be redelivered.')
      throw err
    } finally {
      for (const { state } of touched.values()) state.handling = false
    }
    if (confirmations > 0) log.info({ count: confirmations }, 'Denied calls confirmed earlier revokes.')
    // Ids (escaped, cut at 128 characters: whoever forged the copy chose them), at most 20 per batch.
    if (conflicts.length > 0)
      log.warn(
        {
          event_ids: conflicts.slice(0, 20).map((id) => terminalLine(id.slice(0, 128))),
          count: conflicts.length,
        },
        'Copies of event ids differ from their first delivery, which was kept: a forged record may have pre-empted the real one.',
      )
    // Ids, never payloads; at most 20 named per batch.
    if (flooded.size > 0)
      log.warn(
        { agents: [...flooded].slice(0, 20), count: flooded.size },
        'Agents went over their per-agent cap: repeats of their alerts are being shed.',
      )
    telemetry.batch(batch.length, correlations.length, late.length, touched, partitions)
    arm()
    const [only] = touched.values()
    return touched.size === 1 && only ? { commit: only.state.saved + 1 } : undefined
  }

  const subscription = await deps.bus.subscribe(eventsTopic, correlateGroup, handle, {
    // The correlator reads no event's `raw` (what a call revokes is core.revokes): a CloudTrail event's
    // record is then parsed without it (about half its text), and a late event of such a record is
    // published with raw null (the late-events store drops it anyway).
    withoutRaw: true,
    onAssign: async (assigned) => {
      for (const partition of assigned) if (!partitions.has(partition)) await load(partition)
    },
    onRevoke: async (revoked) => {
      // Nothing is saved here: kafkajs calls this after the rebalance, when the next owner may already read
      // the partition and save into the same log, and a save now would interleave with its own. It restores
      // the last checkpoint and handles the records since again from the commit (the same correlation ids).
      for (const partition of revoked) partitions.delete(partition)
      telemetry.gauges(partitions)
    },
  })
  const { owns: subscriptionOwns } = subscription
  if (subscriptionOwns) owns = (partition) => subscriptionOwns.call(subscription, partition)
  const { advance: subscriptionAdvance } = subscription
  if (subscriptionAdvance)
    advance = (partition, commit) => subscriptionAdvance.call(subscription, partition, commit)
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
      clearTimeout(timer)
      // In two steps where the bus can: no batch is handed over any more and the one in flight ends, then
      // the final save is committed while this member still belongs to its group (a clean restart reads
      // nothing again, and Kafka's lag tools show no lag while nerve is stopped), and only then does it
      // leave. A partition moved away meanwhile is its new owner's: neither saved nor committed here.
      // The final save gets what is left of the stop's budget, where the bus has one (Kafka): a save not
      // done by then is abandoned, and the restart handles the records since the last checkpoint again.
      // Whatever fails, the subscription still leaves and the store still closes.
      const { drain, stopTimeLeft } = subscription
      try {
        await (drain ? drain.call(subscription) : subscription.stop())
        const finalSave = (async () => {
          await Promise.all([...partitions.values()].map((s) => s.saving))
          await Promise.all(await flush([...partitions.keys()], true))
        })()
        const left = stopTimeLeft?.call(subscription)
        if (left !== undefined && !(await settlesWithin(finalSave, left))) {
          abandoned = true
          telemetry.error('BUS_UNAVAILABLE')
          log.warn(
            { error_code: 'BUS_UNAVAILABLE', waited_ms: left },
            'The final checkpoint save did not end within the stop’s time; abandoned, the records since the last checkpoint will be handled again.',
          )
        } else await finalSave
      } catch (err) {
        telemetry.error(errorCodeOf(err))
        log.warn(
          { error_code: errorCodeOf(err), err },
          'The clean stop failed before its final save; the records since the last checkpoint will be handled again.',
        )
      } finally {
        try {
          if (drain) await subscription.stop()
        } finally {
          if (ownStore) await store.close()
        }
      }
    },
  }
}
