// One subscription of the embedded bus: batches of one partition each, in offset order, one batch in flight
// per partition and the partitions side by side (as a Kafka consumer does with its partitions): a batch
// of one partition never waits behind the handlers and commits of the others, and their publishes and
// commits share the bus's group commits. A batch is committed only after handle() resolved. Its commit is
// synced while the partition's next batch is handled, and must be durable before that batch's own commit
// is written: at most two batches of a partition are ever handled but not durably committed (what a crash
// redelivers). A rejected batch (or a failed read) is delivered again after a capped, jittered backoff,
// while the other partitions go on; a failed commit rewinds the partition to its last durable commit, and
// backs off the same way: the attempts count until a commit is durable, not until a handler succeeds. A
// publish or a finished batch starts the next batches (a slow poll is only the fallback), and stop() lets
// the batches in flight finish and commit. A handler that resolves with a commit bound (Handled: its effects
// are durable only up to there) is delivered its next batches, while the commit stays at the bound; if it
// then rejects a batch, the partition is delivered again from that bound. A bound the handler moves outside
// its batches (advance: a checkpoint saved on a timer once the partition went quiet) is committed in the
// partition's turn, between its batches, so that the commit does not wait for a batch that may never come.
// A clean stop may come in two steps: drain() starts no batch (none is read) and resolves once those in
// flight are handled and durably committed, while advance() still commits (a final save); stop() then ends.
import { errorFieldsOf } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { ComponentTelemetry } from '../runtime/metrics.ts'
import type { DeliveredRecord, Handled } from './bus.ts'
import { storageError } from './storage-error.ts'

/** What a consumer sees of its topic; `heads` (next offset per partition) moves as records are published. */
export type ConsumedTopic = {
  readonly id: number
  readonly name: string
  readonly partitions: number
  heads: number[]
}

export type Consumer = {
  readonly group: string
  /** Next offset to deliver per partition (= the committed position once a batch is committed). */
  readonly positions: readonly number[]
  /** Called after records were published to the topic. */
  wake(): void
  /** Subscription.advance: commits up to `commit` between the partition's batches (see bus.ts). */
  advance(partition: number, commit: number): Promise<void>
  /** Subscription.drain: no batch starts any more; resolves once those in flight are committed. */
  drain(): Promise<void>
  stop(): Promise<void>
}

export type ConsumerDeps<T> = {
  /** Records [from, from + limit) of a partition; throws a NerveError when they cannot be read. */
  read(partition: number, from: number, limit: number): DeliveredRecord<T>[]
  log: Logger
  telemetry: ComponentTelemetry
  maxBatch: number
  /** Stores the group's next offset of a partition; resolves once durable. */
  commit(partition: number, nextOffset: number): Promise<void>
  /** After each commit (for gauges). */
  committed(partition: number): void
}

const backoffBaseMs = 100
const backoffCapMs = 10_000
const idlePollMs = 1_000

export function backoffMs(attempt: number, random = Math.random): number {
  const ceiling = Math.min(backoffCapMs, backoffBaseMs * 2 ** Math.min(attempt - 1, 20))
  return Math.round(ceiling * (0.5 + random() / 2))
}

export function startConsumer<T>(
  t: ConsumedTopic,
  group: string,
  positions: number[],
  handle: (batch: readonly DeliveredRecord<T>[]) => Promise<Handled>,
  deps: ConsumerDeps<T>,
): Consumer {
  const { log, telemetry } = deps
  const attempts = positions.map(() => 0)
  /** Per partition, the last position known to be on disk (`positions` may be one batch ahead). */
  const durable = [...positions]
  /** Per partition, the commit the handler allowed last (below `positions` while it defers). */
  const allowed = [...positions]
  const blocked = new Map<number, NodeJS.Timeout>()
  const inFlight = new Map<number, Promise<void>>()
  /** Per partition, the commit being synced: true once durable, false when it failed (and was handled). */
  const committing = new Map<number, Promise<boolean>>()
  let stopped = false
  /** drain() was called: no batch starts, commits asked by advance() still do. */
  let draining = false

  const ready = (p: number) => !blocked.has(p) && !inFlight.has(p) && (positions[p] ?? 0) < (t.heads[p] ?? 0)

  /**
   * Starts a batch on every partition that has records, none in flight and no backoff. Called on a publish,
   * at the end of a batch and of a backoff, and by the slow poll: once per group commit, so no timer, promise
   * or closure is made on the way (a 1 s timer set and cleared at every wake was a tenth of its cost).
   */
  const pump = () => {
    if (stopped || draining) return
    for (let p = 0; p < t.partitions; p++) if (ready(p)) start(p)
  }

  const retryLater = (p: number, err: unknown, stage: 'handle' | 'read' | 'commit') => {
    const attempt = (attempts[p] ?? 0) + 1
    attempts[p] = attempt
    const delay = backoffMs(attempt)
    const fields = errorFieldsOf(err)
    telemetry.error(fields.error_code, stage)
    log.warn(
      { ...fields, stage, topic: t.name, group, partition: p, attempt, retry_in_ms: delay, err },
      stage === 'commit'
        ? 'Offset commit failed; the partition is delivered again from its last durable commit.'
        : 'Batch not committed; it will be delivered again.',
    )
    if (stopped) return
    clearTimeout(blocked.get(p))
    blocked.set(
      p,
      setTimeout(() => {
        blocked.delete(p)
        pump()
      }, delay),
    )
  }

  const deliver = async (p: number) => {
    let batch: DeliveredRecord<T>[]
    const from = positions[p] ?? 0
    // Up to the head only: records past it are written but not yet on disk.
    const limit = Math.min(deps.maxBatch, (t.heads[p] ?? 0) - from)
    try {
      batch = deps.read(p, from, limit)
    } catch (err) {
      return retryLater(p, storageError(err, 'reading'), 'read')
    }
    // Empty only were every record from here on deleted: retention stops at every known group's position,
    // a group that joins during a sweep's turn included (embedded-retention.ts, sweepTopic).
    const next = (batch.at(-1)?.offset ?? (t.heads[p] ?? 0) - 1) + 1
    /** How far the batch may be committed: its end, unless the handler held back (Handled). */
    let bound = next
    if (batch.length > 0) {
      try {
        const handled = await handle(batch)
        if (handled) bound = Math.min(next, handled.commit)
      } catch (err) {
        // What the handler held back is delivered again with this batch.
        positions[p] = Math.min(from, allowed[p] ?? 0)
        return retryLater(p, err, 'handle')
      }
    }
    // The previous batch's commit failed: the partition was rewound, this batch comes again with it.
    if (!(await (committing.get(p) ?? true))) return
    positions[p] = next
    telemetry.sent(batch.length)
    const commit = Math.max(allowed[p] ?? 0, bound)
    // The attempts are counted until the batch's commit is durable: a handler that succeeds while every
    // commit fails (a full disk) would otherwise be retried at the first step, every 50–100 ms, forever.
    if (commit === allowed[p]) {
      attempts[p] = 0
      return
    }
    allowed[p] = commit
    committing.set(p, commitInBackground(p, commit))
  }

  const commitInBackground = (p: number, next: number): Promise<boolean> =>
    deps.commit(p, next).then(
      () => {
        durable[p] = next
        attempts[p] = 0
        deps.committed(p)
        return true
      },
      (err) => {
        committing.delete(p)
        positions[p] = durable[p] ?? 0
        allowed[p] = durable[p] ?? 0
        retryLater(p, storageError(err, 'committing'), 'commit')
        return false
      },
    )

  /** Commits a bound moved outside a batch: never past what was handled, never back, never twice. */
  const commitAdvanced = async (p: number, bound: number) => {
    // The previous commit failed: the partition was rewound, and what it handled comes again.
    if (!(await (committing.get(p) ?? true))) return
    const commit = Math.min(bound, positions[p] ?? 0)
    if (commit <= (allowed[p] ?? 0)) return
    allowed[p] = commit
    committing.set(p, commitInBackground(p, commit))
  }

  /** Per partition, the largest bound advance() asked for since its last turn, and who waits for it. */
  const asked = new Map<number, { bound: number; waiting: (() => void)[] }>()

  /**
   * Starts the commit of the bound asked for, as the partition's turn (no batch starts meanwhile); its
   * askers go once it is done. Called when the partition has nothing in flight: a batch that ends finds
   * it before the partition's next batch starts, so a steady stream does not keep it waiting.
   */
  const commitAsked = (p: number) => {
    const bound = asked.get(p)
    if (!bound) return
    asked.delete(p)
    const work = stopped ? Promise.resolve() : commitAdvanced(p, bound.bound)
    inFlight.set(
      p,
      work.finally(() => {
        for (const go of bound.waiting) go()
        finished(p)
      }),
    )
  }

  const advance = (p: number, bound: number) => {
    if (stopped || p < 0 || p >= t.partitions) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const before = asked.get(p)
      if (before) {
        before.bound = Math.max(before.bound, bound)
        before.waiting.push(resolve)
      } else asked.set(p, { bound, waiting: [resolve] })
      // In the partition's turn: a batch in flight commits first (its handler's bound, maybe past this one).
      if (!inFlight.has(p)) commitAsked(p)
    })
  }

  const finished = (p: number) => {
    inFlight.delete(p)
    commitAsked(p)
    pump()
  }
  const start = (p: number) => {
    inFlight.set(
      p,
      deliver(p).finally(() => finished(p)),
    )
  }

  const poll = setInterval(pump, idlePollMs)
  pump()

  return {
    group,
    positions,
    // From inside the bus's group commit: the batches start once it has finished (every topic's heads set,
    // its publishers' promises resolved), as they did when a wake resolved the idle loop's promise.
    wake: () => queueMicrotask(pump),
    advance,
    drain: async () => {
      draining = true
      // A batch that ends starts the commit advance() asked meanwhile: wait for that one too.
      while (inFlight.size > 0) await Promise.all(inFlight.values())
      await Promise.all(committing.values())
    },
    stop: async () => {
      stopped = true
      clearInterval(poll)
      for (const timer of blocked.values()) clearTimeout(timer)
      await Promise.all(inFlight.values())
      await Promise.all(committing.values())
    },
  }
}
