// The store writer thread's replies (store-writer.worker.mjs) as the main thread's errors: a failed write's
// code (storeErrorCode) crosses as text, SQLite's with it, and becomes a retriable NerveError that the
// bus's consumer logs and counts (errorFieldsOf) and the store's readiness names (failureCode).
import { type ErrorCode, errorCodeOfSqlite, errorCodes, NerveError, sqliteCodeOf } from '../runtime/errors.ts'

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
 * The code of the store's failure: of a write the thread replies to, or of the thread's death as the main
 * thread gets it (a clone, no NerveError any more, whose code survives). Ours (a range the bus file lacks or
 * cannot give: BUS_UNAVAILABLE); a SQLite failure's as errorCodeOfSqlite() maps it (a lock another process
 * holds, a full disk, a missing table or a file that is no database); else INTERNAL.
 */
export function storeErrorCode(err: unknown): ErrorCode {
  const own = (err as { code?: unknown } | null | undefined)?.code
  if (isErrorCode(own)) return own
  const sqlite = sqliteCodeOf(err)
  return sqlite === undefined ? 'INTERNAL' : errorCodeOfSqlite(sqlite)
}

/** A failed reply as the error its write rejects with; SQLite's code, when it has one, as its cause's. */
export function failure(reply: Reply): NerveError {
  return new NerveError(
    isErrorCode(reply.code) ? reply.code : 'INTERNAL',
    `The store could not write: ${reply.message ?? 'unknown error'}`,
    {
      retriable: true,
      cause: reply.sqliteCode === undefined ? undefined : { code: reply.sqliteCode },
    },
  )
}

/** Why a write failed, for readiness: SQLite's code (of the error or its cause), else nerve's. */
export function failureCode(err: unknown): string {
  return sqliteCodeOf(err) ?? storeErrorCode(err)
}

function isErrorCode(code: unknown): code is ErrorCode {
  return (errorCodes as readonly unknown[]).includes(code)
}
