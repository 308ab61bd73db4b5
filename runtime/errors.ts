// Every error nerve raises on purpose carries a code (what went wrong, as a bounded label for metrics
// and the HTTP status table) and a decision (may the caller retry?). Branch on `code`, never on text.

export const errorCodes = [
  'INPUT_INVALID',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'NOT_FOUND',
  'SATURATED',
  'BUS_UNAVAILABLE',
  'BUS_CLOSED',
  'STORAGE_FULL',
  'SINK_UNAVAILABLE',
  'SINK_REJECTED',
  'CONFIG_INVALID',
  'INTERNAL',
] as const

export type ErrorCode = (typeof errorCodes)[number]

export class NerveError extends Error {
  readonly code: ErrorCode
  readonly retriable: boolean
  /** Structured detail safe to show a client (e.g. the list of invalid items). */
  readonly details: unknown

  constructor(
    code: ErrorCode,
    message: string,
    opts: { retriable?: boolean; cause?: unknown; details?: unknown } = {},
  ) {
    super(message, { cause: opts.cause })
    this.name = 'NerveError'
    this.code = code
    this.retriable = opts.retriable ?? false
    this.details = opts.details
  }
}

export function isNerveError(err: unknown): err is NerveError {
  return err instanceof NerveError
}

/**
 * The code of any thrown value: ours, or INTERNAL for everything we did not raise on purpose (a raw SQLite
 * failure too: where one means a sink is unavailable, its caller says so, as the store writer does with
 * errorCodeOfSqlite()).
 */
export function errorCodeOf(err: unknown): ErrorCode {
  return isNerveError(err) ? err.code : 'INTERNAL'
}

/**
 * A failure's fields for an operator's log line: its code and, when SQLite's (a file locked by another
 * process, a full disk, a missing table), SQLite's code too, which says what to do about it.
 */
export function errorFieldsOf(err: unknown): { error_code: ErrorCode; sqlite_code?: string } {
  const sqlite = sqliteCodeOf(err)
  return sqlite === undefined
    ? { error_code: errorCodeOf(err) }
    : { error_code: errorCodeOf(err), sqlite_code: sqlite }
}

/**
 * SQLite's code of a failure (better-sqlite3's SqliteError.code: SQLITE_BUSY, SQLITE_FULL,
 * SQLITE_IOERR_WRITE, …), of the error or of its cause (a NerveError made of it, or one that crossed a
 * thread), when it has one.
 */
export function sqliteCodeOf(err: unknown): string | undefined {
  return ownSqliteCode(err) ?? ownSqliteCode((err as { cause?: unknown } | null | undefined)?.cause)
}

function ownSqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined
}

/** SQLite's codes (and their extended codes) of a write that may pass later, without a fix. */
const transientSqlite = /^SQLITE_(BUSY|LOCKED|IOERR)(_|$)/

/**
 * SQLite's code of a store's failed write as nerve's: a full disk is STORAGE_FULL; a lock another connection
 * holds or an I/O error is SINK_UNAVAILABLE (it may pass later); any other (a broken constraint, a missing
 * table, a corrupt file) is INTERNAL, which waiting does not mend.
 */
export function errorCodeOfSqlite(sqliteCode: string): 'STORAGE_FULL' | 'SINK_UNAVAILABLE' | 'INTERNAL' {
  if (sqliteCode === 'SQLITE_FULL') return 'STORAGE_FULL'
  return transientSqlite.test(sqliteCode) ? 'SINK_UNAVAILABLE' : 'INTERNAL'
}
