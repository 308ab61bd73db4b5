// The commits of the partitions one Kafka consumer owns (kafka-consumer.ts): per partition, the offset
// this member committed last (or kept, while its handler held commits back: Handled), how far its handler
// got, and the order of its commits. A partition's commits run one at a time, each reading what the one
// before left, so that a batch's commit and a bound moved outside a batch (Subscription.advance) never
// cross and never go back. An outside commit still waiting its turn gives its place to the next one asked
// (a batch's, or the furthest of the outside ones): a partition waits behind at most one commit on the wire.
// The first offset fetched in a partition's assignment (the group's commit it started from) is the floor
// of its commits: a handler that has saved nothing yet in this assignment asks a bound below it, and a
// commit there would set the group back to records its earlier owners handled (read again, up to the whole
// retained partition).
// The sending and the fencing are the consumer's: it passes them in.
import type { Handled } from './bus.ts'

/** Sends a commit of `offset` (the partition's next offset to read) to the group. */
export type SendCommit = (offset: number) => Promise<void>

export type PartitionCommits = {
  /**
   * The last commit this member made of `partition` in its current assignment, or the offset that
   * assignment started from (begin); undefined before either.
   */
  committed(partition: number): number | undefined
  /**
   * `partition` was fetched from `first` (the first offset of its batch): in a new assignment, the group's
   * commit it started from, below which no commit of this member goes.
   */
  begin(partition: number, first: number): void
  /**
   * A chunk of `partition` was handed over up to `next` (its last offset + 1), and the handler resolved
   * with `handled` (`nothing`: no record of it could be handed over); returns how far it may be committed,
   * or undefined for no commit.
   */
  chunkDone(partition: number, next: number, handled: Handled | 'nothing'): number | undefined
  /** Commits a chunk's bound, in turn: from what was committed, never back; rejects as `send` does. */
  commitBatch(partition: number, bound: number, send: SendCommit): Promise<void>
  /**
   * Commits a bound moved outside a batch, in turn: never past what the handler got to, never back,
   * nothing when that moves nothing. `held` (is the partition still this member's, as when asked?) is
   * checked when the turn comes and again once sent; rejects as `send` does.
   */
  commitAdvanced(partition: number, bound: number, held: () => boolean, send: SendCommit): Promise<void>
  /** After a rejoin: forgets every partition but those kept (their new owners commit them). */
  keepOnly(kept: readonly number[]): void
  /** Resolves once the commits in progress have ended (at once after giveUp). */
  settled(): Promise<void>
  /** No commit is in progress or waiting its turn. */
  idle(): boolean
  /**
   * A stop that waited long enough: every commit waiting its turn resolves without sending, and so does
   * every one asked later; those on the wire go on (their records are read again after the restart).
   */
  giveUp(): void
}

export function createPartitionCommits(): PartitionCommits {
  /**
   * Per partition owned, the last commit this member made (or kept, while its handler held back), from the
   * offset its assignment started from.
   */
  const allowed = new Map<number, number>()
  /** Partitions whose handler last resolved with a bound short of its chunk: records wait uncommitted. */
  const holding = new Set<number>()
  /** Per partition owned, one past the last record handed over: how far an advanced bound may go. */
  const handledUpTo = new Map<number, number>()
  /** Per partition, the end of its commits in progress: the next one waits for it. */
  const committing = new Map<number, Promise<void>>()
  /** Per partition, the outside commit waiting its turn (not sent yet), which a later one replaces. */
  const queued = new Map<number, { bound: number; replaced: boolean }>()
  /** How to let each commit waiting its turn go at once (giveUp). */
  const waiting = new Set<() => void>()
  let givenUp = false

  /** Resolves when `before` ends, or at giveUp (no reaction outlives its turn: a consumer runs for days). */
  const turnAfter = (before: Promise<void>) =>
    new Promise<void>((resolve) => {
      waiting.add(resolve)
      void before.then(() => {
        waiting.delete(resolve)
        resolve()
      })
    })

  const inTurn = (partition: number, commit: () => Promise<void>): Promise<void> => {
    const before = committing.get(partition)
    const turn = (before ? turnAfter(before) : Promise.resolve()).then(() => (givenUp ? undefined : commit()))
    const end = turn.catch(() => undefined)
    committing.set(partition, end)
    void end.then(() => {
      if (committing.get(partition) === end) committing.delete(partition)
    })
    return turn
  }

  /** Drops the partition's outside commit waiting its turn, if any; returns the bound it asked. */
  const replaceQueued = (partition: number) => {
    const ask = queued.get(partition)
    if (!ask) return undefined
    ask.replaced = true
    queued.delete(partition)
    return ask.bound
  }

  return {
    committed: (partition) => allowed.get(partition),
    begin: (partition, first) => {
      if (!allowed.has(partition)) allowed.set(partition, first)
    },
    chunkDone: (partition, next, handled) => {
      handledUpTo.set(partition, next)
      if (handled === 'nothing') return holding.has(partition) ? undefined : next
      if (handled && handled.commit < next) holding.add(partition)
      else holding.delete(partition)
      return handled ? Math.min(next, handled.commit) : next
    },
    commitBatch: (partition, bound, send) => {
      replaceQueued(partition)
      return inTurn(partition, async () => {
        const from = allowed.get(partition)
        const commit = Math.max(from ?? 0, bound)
        if (commit === from) return
        await send(commit)
        allowed.set(partition, commit)
      })
    },
    commitAdvanced: (partition, bound, held, send) => {
      const ask = { bound: Math.max(bound, replaceQueued(partition) ?? bound), replaced: false }
      queued.set(partition, ask)
      return inTurn(partition, async () => {
        if (queued.get(partition) === ask) queued.delete(partition)
        if (ask.replaced) return
        const from = allowed.get(partition)
        const ceiling = handledUpTo.get(partition)
        if (from === undefined || ceiling === undefined || !held()) return
        const commit = Math.min(ask.bound, ceiling)
        if (commit <= from) return
        await send(commit)
        if (!held()) return
        allowed.set(partition, commit)
        // What was handed over while the commit was on the wire (a chunk held back) keeps its hold.
        if (commit === handledUpTo.get(partition)) holding.delete(partition)
      })
    },
    keepOnly: (kept) => {
      for (const p of allowed.keys()) if (!kept.includes(p)) allowed.delete(p)
      for (const p of holding) if (!kept.includes(p)) holding.delete(p)
      for (const p of handledUpTo.keys()) if (!kept.includes(p)) handledUpTo.delete(p)
    },
    settled: async () => {
      if (!givenUp) await Promise.all([...committing.values()])
    },
    idle: () => committing.size === 0,
    giveUp: () => {
      givenUp = true
      for (const go of waiting) go()
      waiting.clear()
    },
  }
}
