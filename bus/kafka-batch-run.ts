// One batch kafkajs fetched for a Kafka consumer (kafka-consumer.ts), run to its end: once the partition is
// restored (its onAssign), the records are handed over in chunks of maxBatch; a chunk is committed only
// after handle() resolved (up to the bound it resolved with, if any: the fetch position moves on, the
// group's commit stays there, kafka-partition-commits.ts). A refused chunk (or restore) is tried again
// after a capped, jittered backoff, heartbeating meanwhile; when the handler held commits back, the
// partition is first moved back to its last commit (a seek) and the batch abandoned, to be fetched again
// from there. Heartbeats go on while the handler runs too (an Elasticsearch retry can take minutes), so the
// member keeps its partitions. Knows kafkajs's batch only by the members it uses (BatchPayload): kafkajs
// stays fenced in kafka-bus.ts and kafka-consumer.ts.
import { setTimeout as sleep } from 'node:timers/promises'
import { errorFieldsOf } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Handled } from './bus.ts'
import { handlerRetryPolicy } from './kafka-config.ts'
import type { PartitionCommits } from './kafka-partition-commits.ts'
import { backoffDelay } from './kafka-retry.ts'
import type { ConsumerLabels, KafkaTelemetry } from './kafka-telemetry.ts'
import type { PartitionOwnership } from './partition-ownership.ts'

/** What a batch's run uses of kafkajs's EachBatchPayload. */
export type BatchPayload<M extends { offset: string }> = {
  batch: { partition: number; highWatermark: string; messages: M[] }
  heartbeat(): Promise<void>
  isRunning(): boolean
  isStale(): boolean
  resolveOffset(offset: string): void
  commitOffsetsIfNecessary(offsets: {
    topics: { topic: string; partitions: { partition: number; offset: string }[] }[]
  }): Promise<void>
}

export type BatchRunDeps<M extends { offset: string }, R> = {
  where: ConsumerLabels
  maxBatch: number
  decode: (message: M, partition: number) => R | undefined
  handle: (batch: readonly R[]) => Promise<Handled>
  ownership: Pick<PartitionOwnership, 'ready'>
  commits: Pick<PartitionCommits, 'begin' | 'committed' | 'chunkDone' | 'commitBatch'>
  /** Moves the partition's fetch position back to `offset` (kafkajs consumer.seek). */
  seek: (partition: number, offset: string) => void
  /** False once the subscription stops or drains, or the batch went stale (the partition moved). */
  running: (payload: BatchPayload<M>) => boolean
  /** A call to the group coordinator; an answer saying this member is gone ends its membership. */
  toGroup: (call: () => Promise<void>) => Promise<void>
  heartbeatInterval: number
  telemetry: KafkaTelemetry
  log: Logger
  now: () => number
  random: () => number
}

/** Runs one fetched batch to its end (or until the subscription stops or the partition moves). */
export function createBatchRun<M extends { offset: string }, R>(
  deps: BatchRunDeps<M, R>,
): (payload: BatchPayload<M>) => Promise<void> {
  const { where, maxBatch, decode, handle, ownership, commits, running, toGroup } = deps
  const { telemetry, log, now, random } = deps

  /** Waits `ms` in slices, heartbeating; false when the subscription stops or the partition moves. */
  const pause = async (ms: number, payload: BatchPayload<M>) => {
    const until = now() + ms
    while (now() < until) {
      if (!running(payload)) return false
      await sleep(Math.min(200, until - now()))
      await toGroup(() => payload.heartbeat())
    }
    return running(payload)
  }

  /** Heartbeats while `work` runs: a handler may take longer than the session timeout. */
  const heartbeating = async (work: () => Promise<void>, payload: BatchPayload<M>) => {
    const timer = setInterval(() => {
      toGroup(() => payload.heartbeat()).catch((err: unknown) => {
        log.debug({ ...where, err }, 'Heartbeat during a batch failed.')
      })
    }, deps.heartbeatInterval)
    try {
      await work()
    } finally {
      clearInterval(timer)
    }
  }

  /**
   * Runs `work` until it resolves; false when stopped first, or when `rewind` after a failure moved the
   * partition back (the batch is abandoned and fetched again from there).
   */
  const untilDone = async (
    work: () => Promise<void>,
    stage: string,
    payload: BatchPayload<M>,
    rewind?: () => boolean,
  ) => {
    const partition = payload.batch.partition
    for (let attempt = 1; ; attempt++) {
      if (!running(payload)) return false
      try {
        await heartbeating(work, payload)
        return true
      } catch (err) {
        const fields = errorFieldsOf(err)
        const delay = backoffDelay(attempt - 1, handlerRetryPolicy, random)
        telemetry.component.error(fields.error_code, stage)
        log.warn(
          { ...fields, stage, ...where, partition, attempt, retry_in_ms: delay, err },
          'Batch refused; handing it over again.',
        )
        if (!(await pause(delay, payload))) return false
        if (rewind?.()) return false
      }
    }
  }

  return async (payload: BatchPayload<M>) => {
    const { batch } = payload
    const partition = batch.partition
    if (!(await untilDone(() => ownership.ready(partition), 'restore', payload))) return
    // In a new assignment, the group's commit it started from: no commit of this member goes below it.
    const fetched = batch.messages[0]
    if (fetched) commits.begin(partition, Number(fetched.offset))
    for (let i = 0; i < batch.messages.length; i += maxBatch) {
      const chunk = batch.messages.slice(i, i + maxBatch)
      const records: R[] = []
      for (const message of chunk) {
        const record = decode(message, partition)
        if (record !== undefined) records.push(record)
        else {
          telemetry.component.discarded(1, 'undecodable')
          log.error(
            { ...where, partition, offset: message.offset },
            'Dropped a record that is not valid JSON.',
          )
        }
      }
      const first = Number(chunk[0]?.offset)
      /** Records before this chunk were handled but not committed: they come again with it (a seek). */
      const rewind = () => {
        const from = commits.committed(partition)
        if (from === undefined || from >= first) return false
        deps.seek(partition, String(from))
        return true
      }
      const result: { handled: Handled } = { handled: undefined }
      const work = async () => {
        result.handled = await handle(records)
      }
      if (records.length > 0 && !(await untilDone(work, 'handle', payload, rewind))) return
      const last = chunk[chunk.length - 1]
      if (!last) return
      payload.resolveOffset(last.offset)
      // A chunk with nothing to hand over (undecodable) commits nothing past records held back before it.
      const bound = commits.chunkDone(
        partition,
        Number(last.offset) + 1,
        records.length > 0 ? result.handled : 'nothing',
      )
      if (bound !== undefined) {
        // This partition's offset only: uncommittedOffsets() would name every resolved one, past a bound.
        // Heartbeating: the commit may wait its turn behind an outside one that kafkajs retries for minutes.
        const commit = () =>
          commits.commitBatch(partition, bound, (offset) =>
            toGroup(() =>
              payload.commitOffsetsIfNecessary({
                topics: [{ topic: where.topic, partitions: [{ partition, offset: String(offset) }] }],
              }),
            ),
          )
        await heartbeating(commit, payload)
      }
      telemetry.component.received(records.length)
      telemetry.lag(where, partition, Number(batch.highWatermark) - Number(last.offset) - 1)
      await toGroup(() => payload.heartbeat())
    }
  }
}
