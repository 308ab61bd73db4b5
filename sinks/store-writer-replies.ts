// The store writer thread's replies (store-writer.worker.mjs) as the main thread's errors: a failed write's
// code (writeFailureCode) crosses as text, SQLite's with it, and becomes a retriable NerveError that the
// bus's consumer logs and counts (errorFieldsOf) and the store's readiness names (failureCode).
import {
  type ErrorCode,
  errorCodeOfSqlite,
  errorCodes,
  isNerveError,
  NerveError,
  sqliteCodeOf,
} from '../runtime/errors.ts'

/** The thread's answer to one message: its result, or why it failed. */
export type Reply = {
  id: number
  ok: boolean
  result?: unknown
  code?: string
  sqliteCode?: string
  message?: string
}

/**
 * The code the thread replies a failed write with: ours (a range the bus file lacks or cannot give:
 * BUS_UNAVAILABLE); a SQLite failure's as errorCodeOfSqlite() maps it (a lock another process holds, a full
 * disk, a missing table); else INTERNAL.
 */
export function writeFailureCode(err: unknown): ErrorCode {
  if (isNerveError(err)) return err.code
  const sqlite = sqliteCodeOf(err)
  return sqlite === undefined ? 'INTERNAL' : errorCodeOfSqlite(sqlite)
}

/** A thread's death: the code of a NerveError that ended it (its code survives the clone), else INTERNAL. */
export function threadErrorCode(err: unknown): ErrorCode {
  return knownCode((err as { code?: unknown }).code)
}

/** A failed reply as the error its write rejects with; SQLite's code, when it has one, as its cause's. */
export function failure(reply: Reply): NerveError {
  return new NerveError(
    knownCode(reply.code),
    `The store could not write: ${reply.message ?? 'unknown error'}`,
    {
      retriable: true,
      cause: reply.sqliteCode === undefined ? undefined : { code: reply.sqliteCode },
    },
  )
}

/** Why a write failed, for readiness: SQLite's code (of the error or its cause), else nerve's. */
export function failureCode(err: unknown): string {
  return sqliteCodeOf(err) ?? threadErrorCode(err)
}

function knownCode(code: unknown): ErrorCode {
  return (errorCodes as readonly unknown[]).includes(code) ? (code as ErrorCode) : 'INTERNAL'
}
