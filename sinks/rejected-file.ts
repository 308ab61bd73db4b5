// The rejected store's file (rejected-store.ts) opened read-only, for `nerve dead-letters`: it reads what a
// running or stopped nerve kept, and never creates a file or a directory, so a mistyped data dir is said
// as such instead of answering "0 of 0" from a new empty store.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { NerveError } from '../runtime/errors.ts'
import { createRejectedReads, type RejectedReads } from './rejected-reads.ts'

export function openRejectedFile(dataDir: string): { reads: RejectedReads; close(): void } {
  const file = join(dataDir, 'rejected.sqlite')
  if (!existsSync(file)) {
    const what = existsSync(dataDir) ? `has no ${file}` : 'does not exist'
    throw new NerveError(
      'NOT_FOUND',
      `no nerve data at ${dataDir}: it ${what} (set NERVE_DATA_DIR or data_dir to the data dir of 'nerve run').`,
    )
  }
  const db = new Database(file, { readonly: true, fileMustExist: true })
  return { reads: createRejectedReads(db), close: () => db.close() }
}
