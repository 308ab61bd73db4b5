// What /readyz's optional correlation_store check says of the store's writer thread (store-writer-thread.ts
// tells it each start and write): failing from a start that could not open the store to the next that
// does, and from the `failedWritesForReadiness`th write in a row that failed to the next that succeeds.
// Pure: the thread's start back-off is passed in.
import type { ReadinessCheck } from '../runtime/http-routes.ts'

/**
 * Failed writes in a row that make the correlation_store check fail. One is not enough: a lock held for a
 * moment (a backup, an operator's sqlite3) fails a write that the bus's redelivery then stores, and
 * /readyz would flap. Three, as for a revoke webhook target: a lock or a full disk that outlasts the
 * redeliveries (10 s at most apart on the embedded bus) shows within about half a minute.
 */
export const failedWritesForReadiness = 3

export class StoreWriterHealth {
  /** Starts that failed since a thread was last ready, and why the last did (SQLite's code, else nerve's). */
  private startFailures = 0
  private startFailure = ''
  /** Writes that failed since the last that succeeded, and why the last did. */
  private failedWrites = 0
  private writeFailure = ''

  /** `msUntilStart`: the ms until a write may start the thread again (0 when it may now). */
  constructor(private readonly msUntilStart: () => number) {}

  started(): void {
    this.startFailures = 0
  }

  startFailed(code: string): void {
    this.startFailures++
    this.startFailure = code
  }

  wrote(): void {
    this.failedWrites = 0
  }

  writeFailed(code: string): void {
    this.failedWrites++
    this.writeFailure = code
  }

  readonly check: ReadinessCheck = () => {
    const wait = this.msUntilStart()
    const next = wait > 0 ? `the next write after ${Math.ceil(wait / 1000)} s` : 'the next write'
    if (this.startFailures > 0) {
      const tries = `${this.startFailures} ${this.startFailures === 1 ? 'try' : 'tries'}`
      return {
        ok: false,
        detail: `could not open the store (${this.startFailure}) in ${tries}; ${next} tries again`,
      }
    }
    if (this.failedWrites < failedWritesForReadiness) return { ok: true }
    const failed = `${this.failedWrites} writes in a row failed (${this.writeFailure}); the bus delivers them again`
    return { ok: false, detail: wait > 0 ? `${failed}; ${next} starts the writer again` : failed }
  }
}
