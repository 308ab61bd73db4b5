// Opens the embedded bus's SQLite file through runtime/sqlite-file.ts (WAL, the fsync and the checkpoints
// off the event loop), owned by one process: checks its schema version, creates the tables, moves a file of
// schema 1 (a row per record) into one-record segments (embedded-segments.ts), and caps its size.
import type Database from 'better-sqlite3'
import { NerveError } from '../runtime/errors.ts'
import { openSqliteFile, type SqliteFile } from '../runtime/sqlite-file.ts'
import { storageError } from './storage-error.ts'

// Schema 3: an edge event's record may hold null where its alert's output is (bus/record-json.ts). A nerve of
// schema 2 reads its file's records as stored and would see those events without their output: it refuses
// the file instead ("written by a newer nerve"). Nothing in the tables changed, so 2 opens as 3.
// The segments' `raws` column (embedded-segments.ts) is added to a file without it and stays schema 3: a
// nerve that predates it writes null there and reads its records as they are, and spans it left behind a
// trim are not used.
const schemaVersion = 3
const schema = `
CREATE TABLE IF NOT EXISTS topics (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, partitions INTEGER NOT NULL);
-- offset_floor: the next offset is at least this; retention saves it before deleting the records that
-- showed it, so offsets never restart (a publish writes records only: one b-tree, one fsync).
CREATE TABLE IF NOT EXISTS partitions (
  topic_id INTEGER NOT NULL, partition INTEGER NOT NULL, offset_floor INTEGER NOT NULL,
  PRIMARY KEY (topic_id, partition)) WITHOUT ROWID;
-- Records first_offset..last_offset of a partition: keys a JSON array, vals their JSON texts joined by
-- newlines (one text when count = 1), all published (written) at published_at; raws where each one's
-- raw lies (embedded-segments.ts), or null.
CREATE TABLE IF NOT EXISTS segments (
  topic_id INTEGER NOT NULL, partition INTEGER NOT NULL, last_offset INTEGER NOT NULL,
  first_offset INTEGER NOT NULL, keys TEXT NOT NULL, vals TEXT NOT NULL, published_at INTEGER NOT NULL,
  raws TEXT, PRIMARY KEY (topic_id, partition, last_offset));
CREATE TABLE IF NOT EXISTS group_offsets (
  group_name TEXT NOT NULL, topic_id INTEGER NOT NULL, partition INTEGER NOT NULL,
  next_offset INTEGER NOT NULL, PRIMARY KEY (group_name, topic_id, partition)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS group_offsets_by_partition ON group_offsets (topic_id, partition, next_offset);
`

/** Checks the schema version and creates the tables; caps the file for STORAGE_FULL when asked. */
function prepareDatabase(db: Database.Database, file: string, maxBytes: number | undefined): void {
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > schemaVersion) {
    throw new NerveError('BUS_UNAVAILABLE', `${file} was written by a newer nerve (schema ${version}).`)
  }
  // Schema 1 kept a row per record: each becomes a segment of one, in the same transaction. Records are
  // moved a chunk at a time, each deleted once copied, so that the segments reuse their pages: copied
  // whole and then dropped, the file doubled for good (the freed pages stay in it) on top of a WAL as big.
  const perRecord = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'").get()
  db.exec(`BEGIN IMMEDIATE; ${schema}`)
  try {
    const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('segments')").all()
    if (!columns.some((c) => c.name === 'raws')) db.exec('ALTER TABLE segments ADD COLUMN raws TEXT')
    if (perRecord) {
      const chunkEnd = db.prepare<[], { top: number | null }>(
        'SELECT max(rowid) AS top FROM (SELECT rowid FROM records ORDER BY rowid LIMIT 1000)',
      )
      const move = db.prepare<[number]>(
        `INSERT INTO segments (topic_id, partition, last_offset, first_offset, keys, vals, published_at)
         SELECT topic_id, partition, record_offset, record_offset, json_array(key), value, published_at
         FROM records WHERE rowid <= ?`,
      )
      const drop = db.prepare<[number]>('DELETE FROM records WHERE rowid <= ?')
      for (let top = chunkEnd.get()?.top; top != null; top = chunkEnd.get()?.top) {
        move.run(top)
        drop.run(top)
      }
      db.exec('DROP TABLE records')
    }
    db.exec(`PRAGMA user_version = ${schemaVersion}; COMMIT;`)
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK')
    throw err
  }
  if (maxBytes !== undefined) {
    const pageSize = db.pragma('page_size', { simple: true }) as number
    db.pragma(`max_page_count = ${Math.max(1, Math.floor(maxBytes / pageSize))}`)
  }
}

/** The bus's file, ready for embedded-storage.ts; a failure to open it as storageError() maps it. */
export function openBusFile(file: string, maxBytes: number | undefined): SqliteFile {
  try {
    return openSqliteFile(file, {
      singleOwner: {
        onLocked: () => new NerveError('BUS_UNAVAILABLE', `${file} is in use by another process.`),
      },
      configure: (db) => prepareDatabase(db, file, maxBytes),
    })
  } catch (err) {
    throw storageError(err, 'opening')
  }
}
