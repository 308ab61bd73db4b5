// Durable per-partition checkpoints of the correlator (stream time, buffers, seen ids, incidents, revoke
// marks, and the last bus offset they include), in one SQLite file under the data dir. A put() is durable
// when it resolves (WAL, synchronous=FULL), so the bus may commit the batch after it.
import Database from 'better-sqlite3'
import type { KeyValueLog } from '../bus/bus.ts'
import { NerveError } from '../runtime/errors.ts'
import type { CorrelatorState } from './correlator.ts'

export type PartitionCheckpoint = {
  /** Offset of the last record whose effects are in `state`; records at or below it are skipped. */
  offset: number
  state: CorrelatorState
}

export function createSqliteCheckpointStore(file: string): KeyValueLog<PartitionCheckpoint> {
  let db: Database.Database
  try {
    db = new Database(file)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.exec('CREATE TABLE IF NOT EXISTS checkpoints (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
  } catch (cause) {
    throw new NerveError('INTERNAL', `Cannot open correlator checkpoints at ${file}.`, { cause })
  }
  const select = db.prepare<[string], { value: string }>('SELECT value FROM checkpoints WHERE key = ?')
  const upsert = db.prepare<[string, string]>(
    'INSERT INTO checkpoints (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
  )
  const remove = db.prepare<[string]>('DELETE FROM checkpoints WHERE key = ?')

  return {
    get: async (key) => {
      const row = select.get(key)
      return row ? (JSON.parse(row.value) as PartitionCheckpoint) : undefined
    },
    put: async (key, value) => {
      if (value === undefined) remove.run(key)
      else upsert.run(key, JSON.stringify(value))
    },
    close: async () => {
      db.close()
    },
  }
}
