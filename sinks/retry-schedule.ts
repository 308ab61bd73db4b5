// When the store's writer tries again something that failed and holds its writes while it runs: the index
// build a store of an earlier version lacks, and the start of a writer thread that could not open its store.

/**
 * The least wait after a failure, as a multiple of how long the failed attempt took. The writes wait while
 * it runs (the build and the open run on the writer's thread), so waiting at least ten times as long
 * bounds what a try that keeps failing takes from the writes to one part in eleven: a 60 s build that a
 * full disk fails late is tried again 10 minutes later, not after 1, 2, 4 … s with the writes stalled
 * most of that time. Ten keeps a quick failure (a lock held for a moment) on the doubling alone.
 */
export const failedTryMultiple = 10

/**
 * The longest wait of the doubling. A start that cannot open the store fails at once (SQLite opens it
 * without a busy timeout) but costs a thread's start, 0.7 s of CPU (docs/operations.md), and one log line:
 * at two minutes, at most 30 tries an hour, under 1 % of a core. A longer wait saves little of that, and
 * costs the other way: the correlations stay out of the store (the read API, the console) until a try
 * succeeds, so up to two minutes (and the bus's redelivery, 10 s at most on the embedded bus) after a full
 * disk is freed or a lock released. It caps the doubling only: a try that took long still waits
 * `failedTryMultiple` times as long, else a slow failing start would stall the writes most of the time.
 */
export const maxDoublingMs = 120_000

/**
 * A back-off doubled at each failure from `firstWaitMs` to maxDoublingMs, and at least `failedTryMultiple`
 * times the failed try's duration. Times are `now()`'s (ms), so that it outlives a thread that restarts.
 */
export class RetrySchedule {
  private doubling = 0
  private dueAt = Number.NEGATIVE_INFINITY
  /** Failures since the last success. */
  failures = 0

  constructor(
    private readonly now: () => number,
    private readonly firstWaitMs = 1000,
  ) {}

  /** Whether a try may start now. */
  due(): boolean {
    return this.now() >= this.dueAt
  }

  /** The ms until a try may start (0 when it may now). */
  msUntilDue(): number {
    return Math.max(0, Math.ceil(this.dueAt - this.now()))
  }

  /** A try that failed after `tookMs`: the ms until the next may start. */
  failed(tookMs: number): number {
    this.doubling = this.failures === 0 ? this.firstWaitMs : Math.min(this.doubling * 2, maxDoublingMs)
    this.failures++
    const wait = Math.max(this.doubling, Math.ceil(failedTryMultiple * tookMs))
    this.dueAt = this.now() + wait
    return wait
  }

  /** A try that succeeded: the next failure starts the back-off again. */
  succeeded(): void {
    this.failures = 0
    this.dueAt = Number.NEGATIVE_INFINITY
  }
}
