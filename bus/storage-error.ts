// The embedded bus's SQLite failures as nerve's errors: what the bus's file (embedded-storage.ts) and its
// readers throw reaches publishers and consumers as STORAGE_FULL or BUS_UNAVAILABLE, retriable.
import { NerveError } from '../runtime/errors.ts'

/** Maps a SQLite failure onto the bus's error codes: a full disk is STORAGE_FULL, anything else unavailable. */
export function storageError(err: unknown, doing: string): NerveError {
  if (err instanceof NerveError) return err
  const code = (err as { code?: unknown }).code
  if (code === 'SQLITE_FULL') {
    return new NerveError('STORAGE_FULL', `Bus storage is full while ${doing}; nothing was written.`, {
      retriable: true,
      cause: err,
    })
  }
  return new NerveError('BUS_UNAVAILABLE', `Bus storage failed while ${doing} (${String(code)}).`, {
    retriable: true,
    cause: err,
  })
}

/** Runs `run`, its SQLite failure thrown as storageError() maps it. */
export function withStorage<R>(doing: string, run: () => R): R {
  try {
    return run()
  } catch (err) {
    throw storageError(err, doing)
  }
}
