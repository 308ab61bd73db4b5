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
  'STATE_OVERFLOW',
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
 * The code of any thrown value: ours; a SQLite failure's as errorCodeOfSqlite() maps it; INTERNAL for
 * everything else we did not raise on purpose.
 */
export function errorCodeOf(err: unknown): ErrorCode {
  if (isNerveError(err)) return err.code
  const sqlite = sqliteCodeOf(err)
  return sqlite === undefined ? 'INTERNAL' : errorCodeOfSqlite(sqlite)
}

/**
 * A failure's fields for an operator's log line: its code and, when SQLite's (a store locked by another
 * process, a full disk), SQLite's code too, which says what to do about it.
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

/**
 * SQLite's code as nerve's: a full disk is STORAGE_FULL; a held lock, an I/O error or any other is
 * SINK_UNAVAILABLE.
 */
export function errorCodeOfSqlite(sqliteCode: string): 'STORAGE_FULL' | 'SINK_UNAVAILABLE' {
  return sqliteCode === 'SQLITE_FULL' ? 'STORAGE_FULL' : 'SINK_UNAVAILABLE'
}
