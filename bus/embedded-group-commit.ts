// The embedded bus's writes: the records published in the same event-loop turn, and the consumers' offset
// commits, are written together and synced off the event loop (one fdatasync, group commit; one write in
// flight, those queued meanwhile form the next), in transactions of about 512 KB with a turn of the loop
// between them, each publish whole in one. Each publish resolves once its records are on disk and rejects,
// keeping none, otherwise: a failed group takes back every transaction it wrote, records and offset
// commits (should that take-back fail too, they stay, as a crash would leave them, and later writes go
// past them). Once durable, the records are handed to the topic's consumers (embedded-topics.ts).
// From a failed group to the next write that succeeds, the bus says it cannot take writes (readiness):
// while nothing is written (every sender answered 507 stops sending), a probe tries the disk: one page, and
// room for a publish (embedded-storage.ts).
import type { NerveError } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { ComponentTelemetry } from '../runtime/metrics.ts'
import { nextTurn } from '../runtime/next-turn.ts'
import type { AppendRow, CommitRow, EmbeddedStorage, PriorPosition } from './embedded-storage.ts'
import type { EmbeddedTopics, TopicState } from './embedded-topics.ts'
import { storageError } from './storage-error.ts'

export type GroupCommit = {
  /** Queues a publish's rows (see Pending; their offsets are given when written); resolves once durable. */
  append(topic: TopicState, rows: AppendRow[], values: unknown[] | undefined, bytes: number): Promise<void>
  /** A consumer's position, written with the next group commit; resolves once durable. */
  commitOffset(commit: CommitRow): Promise<void>
  /** Writes and syncs everything queued, including what is queued while it runs. */
  drain(): Promise<void>
  /** The writes that failed in a row (groups and probes) and the last one's error; undefined once one succeeds. */
  failing(): { writes: number; error: NerveError } | undefined
  /** No probe starts any more (the bus closes). */
  stopProbing(): void
}

/** While writes fail and nothing is written, a probe tries the disk this often. */
const probeEveryMs = 2_000

type Waiter = { resolve(): void; reject(err: unknown): void }
/**
 * `values[i]` is the record `rows[i]` holds as JSON; undefined when no subscription reads values (the
 * events are read as text by the correlate thread): the objects are then not kept alive past the publish.
 * `bytes`: the length of the rows' JSON text.
 */
type Pending = Waiter & { topic: TopicState; rows: AppendRow[]; values: unknown[] | undefined; bytes: number }
type PendingCommit = Waiter & { commit: CommitRow }

/**
 * Rows one group commit writes (one fdatasync), unless a single publish holds more (a publish is written
 * whole): three 4 MB bodies published at once used to be one transaction of 12,000 rows, about 70 ms of the
 * event loop.
 */
const maxRowsPerWrite = 2_000
/**
 * Within a group commit, a transaction stops at about this much JSON (unless one publish holds more), and
 * the loop is given a turn before the next: a transaction costs about 7–9 ms per MB of rows here (1 MB
 * left transactions of 20–30 ms under load, so 512 KB). The group is still synced once, after its last
 * transaction (ingest publishes a large body in parts of 125 records, about 300 KB).
 */
const maxBytesPerTransaction = 512 * 1024

/** How many publishes from the head of the queue one group commit takes: up to maxRowsPerWrite rows, one at least. */
function publishesToTake(queue: readonly Pending[]): number {
  let take = 0
  let taken = 0
  while (take < queue.length && (take === 0 || taken + (queue[take]?.rows.length ?? 0) <= maxRowsPerWrite)) {
    taken += queue[take]?.rows.length ?? 0
    take++
  }
  return take
}

/** Gives the rows of `batch` their offsets, in order; returns the heads each topic will have once they are durable. */
function assignOffsets(batch: readonly Pending[], rows: AppendRow[]): Map<TopicState, number[]> {
  const nextHeads = new Map<TopicState, number[]>()
  for (const pending of batch) {
    const heads = nextHeads.get(pending.topic) ?? [...(pending.topic.leftBehind ?? pending.topic.heads)]
    nextHeads.set(pending.topic, heads)
    for (const row of pending.rows) {
      row.offset = heads[row.partition] ?? 0
      heads[row.partition] = row.offset + 1
      rows.push(row)
    }
  }
  return nextHeads
}

/** Where the transaction that starts at publish `start` ends (exclusive), and how many rows it writes. */
function transactionFrom(batch: readonly Pending[], start: number): { end: number; count: number } {
  let end = start
  let bytes = 0
  while (
    end < batch.length &&
    (end === start || bytes + (batch[end]?.bytes ?? 0) <= maxBytesPerTransaction)
  ) {
    bytes += batch[end]?.bytes ?? 0
    end++
  }
  let count = 0
  for (let i = start; i < end; i++) count += batch[i]?.rows.length ?? 0
  return { end, count }
}

export function startGroupCommit(
  storage: EmbeddedStorage,
  deps: {
    topics: EmbeddedTopics
    log: Logger
    telemetry: ComponentTelemetry
    now: () => number
    probeEveryMs?: number
  },
): GroupCommit {
  const { topics, log, telemetry, now } = deps
  let queue: Pending[] = []
  let commits: PendingCommit[] = []
  let flushScheduled = false
  /** The write being synced; the next one starts when it is done. */
  let writing: Promise<void> | undefined

  const startWrite = (): Promise<void> => {
    writing = flush().finally(() => {
      writing = undefined
      if (queue.length > 0 || commits.length > 0) scheduleFlush()
    })
    return writing
  }
  const scheduleFlush = () => {
    if (flushScheduled || writing) return
    flushScheduled = true
    setImmediate(() => {
      flushScheduled = false
      if (!writing) void startWrite()
    })
  }

  let failing: { writes: number; error: NerveError } | undefined
  let probeTimer: NodeJS.Timeout | undefined
  let probing = true

  const wrote = () => {
    if (!failing) return
    log.info({ failed_writes: failing.writes }, 'Bus storage takes writes again.')
    failing = undefined
    clearTimeout(probeTimer)
    probeTimer = undefined
  }
  const writeFailed = (error: NerveError) => {
    failing = { writes: (failing?.writes ?? 0) + 1, error }
    scheduleProbe()
  }
  /** A probe, unless a group is written or queued meanwhile: its outcome says as much. */
  const scheduleProbe = () => {
    if (probeTimer || !probing) return
    probeTimer = setTimeout(() => {
      probeTimer = undefined
      if (!failing) return
      if (writing || queue.length > 0 || commits.length > 0) return scheduleProbe()
      writing = probe().finally(() => {
        writing = undefined
        if (queue.length > 0 || commits.length > 0) scheduleFlush()
      })
    }, deps.probeEveryMs ?? probeEveryMs)
  }
  const probe = async () => {
    try {
      storage.probe()
      await storage.sync()
      wrote()
    } catch (err) {
      writeFailed(storageError(err, 'probing'))
    }
  }

  const failWrite = (err: unknown, rows: AppendRow[], waiters: Waiter[]) => {
    const commitsOnly = rows.length === 0
    const error = storageError(err, commitsOnly ? 'committing offsets' : 'publishing')
    writeFailed(error)
    // Offset commits alone: each consumer logs and counts its own, once per step of its backoff.
    if (!commitsOnly) {
      telemetry.error(error.code, 'publish', rows.length)
      log.error(
        { error_code: error.code, records: rows.length, err },
        'Publish failed; nothing was written and the caller was told to retry.',
      )
    }
    for (const waiter of waiters) waiter.reject(error)
  }

  /**
   * Takes back what a failed group wrote but did not make durable: the rows of `written` (its publishes)
   * and the offset commits it carried (`positions`: where they were before), all rejected to their callers.
   */
  const discardUnsynced = (written: readonly Pending[], positions: readonly PriorPosition[]) => {
    try {
      storage.discard(
        written.flatMap((pending) => pending.rows),
        positions,
      )
    } catch (discardErr) {
      // Left on disk at offsets the next write would reuse: every later publish would fail on them until
      // a restart (which finds them, as after a crash: their senders were told to retry). Write past them;
      // they become visible with the next durable write of their topic. The offset commits stay too: their
      // consumers, told that they failed, deliver those batches again (at least once, as after a crash).
      for (const pending of written) {
        const t = pending.topic
        t.leftBehind ??= [...t.heads]
        const next = t.leftBehind
        for (const row of pending.rows)
          next[row.partition] = Math.max(next[row.partition] ?? 0, row.offset + 1)
      }
      log.error(
        { err: discardErr },
        'Could not take back records written but not made durable; writing past them.',
      )
    }
  }

  /** The group is durable: its records go to the recent values and their topics' heads move. */
  const madeDurable = (batch: readonly Pending[], nextHeads: Map<TopicState, number[]>) => {
    for (const pending of batch) {
      const t = pending.topic
      if (t.readers === 0) continue
      const values = pending.values
      for (let i = 0; i < pending.rows.length; i++) {
        const row = pending.rows[i] as AppendRow
        t.recent.add(row.partition, row.offset, row.key, values?.[i], row.value)
      }
    }
    for (const [t, heads] of nextHeads) {
      const before = t.heads
      t.heads = heads
      t.leftBehind = undefined
      topics.headsMoved(t, before)
    }
  }

  const flush = async () => {
    if (queue.length === 0 && commits.length === 0) return
    const take = publishesToTake(queue)
    const batch = queue.slice(0, take)
    const batchCommits = commits
    queue = queue.slice(take)
    commits = []
    const waiters: Waiter[] = [...batch, ...batchCommits]
    const rows: AppendRow[] = []
    const nextHeads = assignOffsets(batch, rows)
    // Transactions of at most maxBytesPerTransaction (each publish whole in one), a turn between them; the
    // offset commits go with the first. A failing transaction takes back those written before it, the
    // offset commits with them: a consumer told that its commit failed rewinds to its last durable one, and
    // the file must say the same (kept or taken back together with the records of their group).
    const publishedAt = now()
    let priorPositions: PriorPosition[] = []
    let written = 0
    let start = 0
    do {
      const { end, count } = transactionFrom(batch, start)
      // Ahead of the bodies cut into parts: every publish and offset commit waits on this group.
      if (start > 0) await nextTurn(true)
      try {
        const prior = storage.write(
          rows.slice(written, written + count),
          start === 0 ? batchCommits.map((c) => c.commit) : [],
          publishedAt,
        )
        if (start === 0) priorPositions = prior
      } catch (err) {
        if (start > 0) discardUnsynced(batch.slice(0, start), priorPositions)
        return failWrite(err, rows, waiters)
      }
      written += count
      start = end
    } while (start < batch.length)
    try {
      await storage.sync()
    } catch (err) {
      // Not known to be on disk: take the records back so that a rejected publish keeps nothing.
      discardUnsynced(batch, priorPositions)
      return failWrite(err, rows, waiters)
    }
    wrote()
    madeDurable(batch, nextHeads)
    if (rows.length > 0) telemetry.received(rows.length)
    for (const waiter of waiters) waiter.resolve()
  }

  return {
    append: (topic, rows, values, bytes) =>
      new Promise((resolve, reject) => {
        queue.push({ topic, rows, values, bytes, resolve, reject })
        scheduleFlush()
      }),
    commitOffset: (commit) =>
      new Promise((resolve, reject) => {
        commits.push({ commit, resolve, reject })
        scheduleFlush()
      }),
    drain: async () => {
      while (writing || queue.length > 0 || commits.length > 0) await (writing ?? startWrite())
    },
    failing: () => failing,
    stopProbing: () => {
      probing = false
      clearTimeout(probeTimer)
      probeTimer = undefined
    },
  }
}
