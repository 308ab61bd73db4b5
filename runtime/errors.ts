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

/** The code of any thrown value: ours, or INTERNAL for everything we did not raise on purpose. */
export function errorCodeOf(err: unknown): ErrorCode {
  return isNerveError(err) ? err.code : 'INTERNAL'
}
