// A Kafka consumer of one (topic, group), for the Kafka bus's subscribe(), subscribeRaw() and key-value logs.
// - eachBatch with autoCommit off, each batch run by kafka-batch-run.ts: records are handed over in chunks
//   of maxBatch, and an offset is resolved and committed only after handle() resolved (up to the bound it
//   resolved with, if any: the fetch position moves on, the group's commit stays there). A refused chunk is handed over again after a capped, jittered
//   backoff (from the partition's last commit, by a seek, when the handler held commits back); heartbeats go
//   on meanwhile and while the handler runs (an Elasticsearch retry can take minutes), so the member keeps
//   its partitions; if the partition moves away first, the new owner reads it again from the last commit
//   (at-least-once).
// - a bound the handler moves outside a batch (Subscription.advance: a checkpoint saved on a timer once
//   the partition went quiet) is committed with consumer.commitOffsets, in turn with the batches' commits
//   (kafka-partition-commits.ts) and under the same fences; without it the group's commit would wait for
//   the partition's next batch. kafkajs retries it (no per-call option): a batch's commit waiting behind
//   it heartbeats, and stop() gives up the commits still waiting after the session timeout.
// - a clean stop in two steps: drain() pauses fetching (kafkajs consumer.pause: the runner goes on
//   fetching nothing and heartbeating, so the member stays in its group and takes part in a rebalance),
//   lets the chunk in flight end and commit, and hands over nothing more; advance() still commits (the
//   handler's final save); stop() then leaves. The whole stop has one budget, the session timeout from
//   drain() (else from stop()): the batch in flight, the handler's final save (stopTimeLeft) and the
//   commits share it, and once it is spent, the batches still running and kafkajs's leaving get
//   leaveGraceMs more, after which the stop goes on without them (logged): neither a sick coordinator nor
//   a handler that never ends hangs a SIGTERM. A kafkajs crash (its consumer then has no group to pause,
//   and a restart joins with a new one) leaves the drain paused: a drained member fetches nothing.
// - rebalances: onAssign/onRevoke (partition-ownership.ts); a partition's batches wait for its onAssign.
//   Subscription.owns is false while the member may be out of its group, evicted included
//   (kafka-group-membership.ts); a member that joins again as a new one restores its partitions again.
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs'
import { errorCodeOf } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import { settlesWithin } from '../runtime/settles-within.ts'
import type { KafkaConfig } from '../schemas/types.ts'
import type { Handled, SubscribeOptions, Subscription } from './bus.ts'
import { createBatchRun } from './kafka-batch-run.ts'
import { consumerTiming, retryPolicy } from './kafka-config.ts'
import { createGroupMembership } from './kafka-group-membership.ts'
import { createPartitionCommits } from './kafka-partition-commits.ts'
import { busError } from './kafka-retry.ts'
import type { KafkaTelemetry } from './kafka-telemetry.ts'
import { createPartitionOwnership } from './partition-ownership.ts'

export type RawSubscribeOptions = SubscribeOptions & {
  /** Where a group with no committed offset starts: the earliest retained record (default) or new ones only. */
  fromBeginning?: boolean
}

/** A running consumer; the bus stops them all when it closes and sums their restores for /readyz. */
export type KafkaSubscription = Subscription & { stop(): Promise<void>; restoring(): number }

/** What a consumer shares with the bus that starts it. */
export type ConsumerDeps = {
  kafka: Pick<Kafka, 'consumer'>
  config: KafkaConfig
  log: Logger
  telemetry: KafkaTelemetry
  now: () => number
  random: () => number
  /** The bus's running consumers: a consumer is in it from its start until it has stopped. */
  subscriptions: Set<KafkaSubscription>
}

export type Decode<R> = (message: KafkaMessage, partition: number) => R | undefined

/** Once a stop's budget is spent: how long it still waits for batches to end and for kafkajs to leave. */
export const leaveGraceMs = 5_000

export async function consume<R>(
  deps: ConsumerDeps,
  name: string,
  group: string,
  decode: Decode<R>,
  handle: (batch: readonly R[]) => Promise<Handled>,
  options: RawSubscribeOptions,
): Promise<KafkaSubscription> {
  const { kafka, config, log, telemetry, now, random, subscriptions } = deps
  const maxBatch = Math.max(1, options.maxBatch ?? 500)
  const where = { topic: name, group }
  const ownership = createPartitionOwnership(
    options,
    {
      restored: (parts, ms, failed) => {
        telemetry.restored(group, ms)
        // A failure is counted and logged where it is retried (stage "restore").
        if (!failed) log.info({ ...where, partitions: parts, ms }, 'Partitions restored.')
      },
      revokeFailed: (parts, err) => {
        telemetry.component.error(errorCodeOf(err), 'revoke', parts.length)
        log.warn({ ...where, partitions: parts, err }, 'onRevoke failed.')
      },
    },
    now,
  )
  const timing = consumerTiming(config)
  const consumer: Consumer = kafka.consumer({
    groupId: group,
    retry: retryPolicy,
    allowAutoTopicCreation: false,
    ...timing,
  })
  const commits = createPartitionCommits()
  // While this member is not surely in the group (a rebalance began, it was evicted, or it may have
  // been), none of its partitions is surely its own: another member may be given any of them.
  const membership = createGroupMembership(timing.sessionTimeout, now)
  consumer.on(consumer.events.REBALANCING, () => membership.left())
  consumer.on(consumer.events.REQUEST, ({ payload }) =>
    membership.answered(payload.apiName, payload.duration),
  )
  consumer.on(consumer.events.HEARTBEAT, () => membership.heartbeat())
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    // A kafkajs restart after a crash joins with a new consumer group, which has no pause.
    if (draining) pauseFetching()
    const renewed = membership.joined(payload.memberId)
    const assigned = payload.memberAssignment[name] ?? []
    // A new membership keeps nothing: the group may have moved its partitions meanwhile.
    const kept = renewed ? [] : assigned
    commits.keepOnly(kept)
    telemetry.rebalanced(where, assigned.length)
    for (const p of ownership.owned()) if (!assigned.includes(p)) telemetry.forget(where, p)
    if (renewed) ownership.assign([])
    ownership.assign(assigned)
    log.info({ ...where, partitions: assigned, rejoined: renewed }, 'Joined the consumer group.')
  })
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    // A crashed consumer rejoins (or stops): until a GROUP_JOIN says what it owns, it owns nothing.
    membership.left()
    telemetry.component.error('BUS_UNAVAILABLE', 'consume')
    log.warn({ ...where, restart: payload.restart, err: payload.error }, 'Consumer crashed.')
  })

  let stopping = false
  /** drain() was called: no batch is handed over any more, though the member stays in its group. */
  let draining = false
  /** stop() sent (or is sending) LeaveGroup: the partitions may already be another member's. */
  let leaving = false
  /** Stops fetching; after a kafkajs crash there is no group to pause, and nothing is fetched anyway. */
  const pauseFetching = () => {
    try {
      consumer.pause([{ topic: name }])
    } catch (err) {
      log.info({ ...where, err }, 'No consumer group to pause (kafkajs crashed); it fetches nothing.')
    }
  }
  const batches = new Set<Promise<void>>()
  const running = (payload: Pick<EachBatchPayload, 'isRunning' | 'isStale'>) =>
    !stopping && !draining && payload.isRunning() && !payload.isStale()

  /** When the stop's budget (the session timeout, from drain() or else from stop()) began. */
  let stopStartedAt: number | undefined
  const stopTimeLeft = () =>
    stopStartedAt === undefined
      ? timing.sessionTimeout
      : Math.max(0, stopStartedAt + timing.sessionTimeout - now())
  /** True once `work` has settled, false when the stop's budget ran out first. */
  const withinStop = (work: Promise<unknown>) => {
    stopStartedAt ??= now()
    return settlesWithin(work, stopTimeLeft())
  }
  /** The batches in flight and their commits (those kafkajs retries against a sick coordinator too). */
  const inFlight = async () => {
    await Promise.allSettled([...batches])
    await commits.settled()
  }

  /** A call to the group coordinator; an answer saying this member is gone ends its membership. */
  const toGroup = async (call: () => Promise<void>) => {
    try {
      await call()
    } catch (err) {
      if (membership.failed(err)) {
        log.info(
          { ...where, err },
          'The group answered that this member must join again; it owns nothing until it has.',
        )
      }
      throw err
    }
  }

  const processBatch = createBatchRun<KafkaMessage, R>({
    where,
    maxBatch,
    decode,
    handle,
    ownership,
    commits,
    seek: (partition, offset) => consumer.seek({ topic: name, partition, offset }),
    running,
    toGroup,
    heartbeatInterval: timing.heartbeatInterval,
    telemetry,
    log,
    now,
    random,
  })

  try {
    await consumer.connect()
    await consumer.subscribe({ topics: [name], fromBeginning: options.fromBeginning ?? true })
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: async (payload) => {
        // A batch fetched before drain() paused the topic: not handed over, read again after the restart.
        // Paused again: a kafkajs restart's new consumer group would otherwise fetch it on and on.
        if (draining) payload.pause()
        if (stopping || draining) return
        const work = processBatch(payload)
        batches.add(work)
        try {
          await work
        } finally {
          batches.delete(work)
        }
      },
    })
  } catch (err) {
    await consumer.disconnect().catch(() => undefined)
    throw busError(err, `subscribe to ${name}`)
  }

  /**
   * Commits a bound the handler moved outside a batch (Subscription.advance), fenced as the batches are:
   * only while this member surely holds the partition under the assignment it held when asked (a
   * partition that moved away, or away and back, is its new owner's to commit), checked again when the
   * commit's turn comes.
   */
  const commitOutside = async (partition: number, bound: number) => {
    const tenure = ownership.tenure(partition)
    const held = () =>
      !stopping &&
      tenure !== undefined &&
      membership.current() &&
      ownership.owns(partition) &&
      ownership.tenure(partition) === tenure
    if (!held()) return
    try {
      await commits.commitAdvanced(partition, bound, held, (commit) =>
        toGroup(() => consumer.commitOffsets([{ topic: name, partition, offset: String(commit) }])),
      )
    } catch (err) {
      // The group rebalances or dropped this member (toGroup logged it): the partition's owner commits it.
      if (!held()) return
      const code = errorCodeOf(err)
      telemetry.component.error(code, 'commit')
      log.warn(
        { error_code: code, ...where, partition, err },
        'Committing a quiet partition failed; its next batch or save commits it.',
      )
    }
  }

  let drained: Promise<void> | undefined
  let stopped: Promise<void> | undefined
  const subscription = {
    // While draining, within the stop's time: the final commits never hold a stop past it.
    advance: async (partition: number, bound: number) => {
      const work = commitOutside(partition, bound)
      if (draining) await withinStop(work)
      else await work
    },
    restoring: () => ownership.restoring(),
    owns: (partition: number) => !leaving && membership.current() && ownership.owns(partition),
    stopTimeLeft,
    drain: () => {
      drained ??= (async () => {
        if (stopping) return
        draining = true
        stopStartedAt = now()
        pauseFetching()
        await withinStop(inFlight())
      })()
      return drained
    },
    stop: () => {
      stopped ??= (async () => {
        stopping = true
        // The in-flight batch finishes and commits while this member still belongs to the group, unless
        // it (or an outside commit kafkajs keeps retrying: a sick coordinator) is still at it when the
        // stop's budget runs out: the commits waiting are given up, and kafkajs's runner, once stopped,
        // retries no more. Only commits really waiting count: a budget spent by the handler's final save
        // gives up nothing.
        const idle = batches.size === 0 && commits.idle()
        if (!idle && !(await withinStop(inFlight()))) {
          telemetry.component.error('BUS_UNAVAILABLE', 'commit')
          log.warn(
            { error_code: 'BUS_UNAVAILABLE', ...where, waited_ms: timing.sessionTimeout },
            'Commits still waiting at stop were given up; their records are read again after the restart.',
          )
          commits.giveUp()
        }
        // kafkajs's stop waits for the batch in flight, then sends LeaveGroup: both within a grace. From
        // LeaveGroup on the group may give the partitions to another member, before the disconnect ends:
        // this member owns none of them any more (a final save abandoned at the budget writes no more).
        const left = (async () => {
          await Promise.allSettled([...batches])
          leaving = true
          await consumer.stop()
          await consumer.disconnect()
        })().catch((err: unknown) => {
          log.warn({ ...where, err }, 'Leaving the consumer group failed; the group drops this member.')
        })
        if (!(await settlesWithin(left, leaveGraceMs))) {
          telemetry.component.error('BUS_UNAVAILABLE', 'stop')
          log.warn(
            { error_code: 'BUS_UNAVAILABLE', ...where, waited_ms: leaveGraceMs },
            'The member did not leave its group in time; the stop goes on, and the group drops it after the session timeout.',
          )
        }
        for (const p of ownership.owned()) telemetry.forget(where, p)
        await ownership.revokeAll()
        subscriptions.delete(subscription)
      })()
      return stopped
    },
  }
  subscriptions.add(subscription)
  return subscription
}
