// The index a store of an earlier version lacks, as the store writer thread (store-writer-thread.ts) asks
// its worker to build it: once at a time, again after a failure once its back-off has passed (ten times the
// failed build at least, however long), and told to the operator before and after. Kept on the main
// thread, so that a thread started again goes on with it; the writes go on without the index meanwhile.
import { errorCodeOfSqlite } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { ComponentTelemetry } from '../runtime/metrics.ts'
import type { IndexBuild } from './correlation-store.ts'
import { RetrySchedule } from './retry-schedule.ts'

/**
 * An index build as it is logged: a failed one with the ms until it is tried again, one started after a
 * failure with how many failed before it.
 */
type ToldIndexBuild = IndexBuild & { retry_in_ms?: number; failures?: number }

export class StoreIndexBuild {
  private readonly retry: RetrySchedule
  /** `asked` of the thread (once at a time) when wanted and its back-off has passed. */
  private state: 'wanted' | 'asked' | 'done' = 'wanted'

  constructor(
    now: () => number,
    private readonly telemetry: ComponentTelemetry,
    private readonly log: Logger | undefined,
  ) {
    this.retry = new RetrySchedule(now)
  }

  /** Whether to ask the thread for the build with the next message (it then counts as asked). */
  ask(): boolean {
    if (this.state !== 'wanted' || !this.retry.due()) return false
    this.state = 'asked'
    return true
  }

  /** The thread said the index is there: never asked again. */
  done(): void {
    this.state = 'done'
  }

  /** A thread that died with the build asked did not finish it: the next thread is asked. */
  threadDied(): void {
    if (this.state === 'asked') this.state = 'wanted'
  }

  /**
   * A build the thread told of: a failed one is counted (by errorCodeOfSqlite) and tried again once its
   * back-off has passed.
   */
  told(build: IndexBuild): void {
    let retry: { retry_in_ms?: number; failures?: number } = {}
    if (build.failed !== undefined) {
      this.telemetry.error(errorCodeOfSqlite(build.failed), 'index_build')
      this.state = 'wanted'
      retry = { retry_in_ms: this.retry.failed(build.ms ?? 0) }
    } else if (build.ms !== undefined) this.retry.succeeded()
    else if (this.retry.failures > 0) retry = { failures: this.retry.failures }
    if (this.log) logIndexBuild(this.log, { ...build, ...retry })
  }
}

/**
 * Before and after a build of an index a store of an earlier version lacks (about 6 s per million revoke
 * outcomes): HTTP listens meanwhile, the store's writes wait and an incident's revokes read slower. Once:
 * the next start finds the index. A build that failed is told with how long it ran and when it is tried
 * again, and the next try as a retry.
 */
function logIndexBuild(
  log: Logger,
  { index, rows, ms, failed, retry_in_ms, failures }: ToldIndexBuild,
): void {
  if (failed !== undefined)
    log.warn(
      {
        index,
        revoke_outcomes: rows,
        error_code: errorCodeOfSqlite(failed),
        sqlite_code: failed,
        duration_ms: ms,
        retry_in_ms,
      },
      "Could not build the index: the store's writes go on without it (an incident's revokes read slower), and it is tried again before a write once retry_in_ms has passed.",
    )
  else if (ms === undefined && failures !== undefined)
    log.info(
      { index, revoke_outcomes: rows, failures },
      "Retrying the build of an index this version needs: the store's writes wait for it (about 6 s per million revoke outcomes).",
    )
  else if (ms === undefined)
    log.info(
      { index, revoke_outcomes: rows },
      "Building an index this version needs, once: the store's writes wait for it (about 6 s per million revoke outcomes).",
    )
  else
    log.info({ index, revoke_outcomes: rows, duration_ms: ms }, "Built the index; the store's writes go on.")
}
