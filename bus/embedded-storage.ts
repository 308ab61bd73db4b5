// The embedded bus's disk: one SQLite file (better-sqlite3), opened through runtime/sqlite-file.ts (WAL,
// the fsync and the checkpoints off the event loop) and owned by one process. Every write is one
// transaction: a publish lands whole or not at all, and is durable once sync() resolves. Offsets are
// contiguous per (topic, partition).
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type Database from 'better-sqlite3'
import { NerveError } from '../runtime/errors.ts'
import { openSqliteFile, type SqliteFile } from '../runtime/sqlite-file.ts'

export type StoredTopic = { id: number; name: string; partitions: number }
export type StoredRecord = { offset: number; key: string; value: string }
export type AppendRow = { topicId: number; partition: number; offset: number; key: string; value: string }
export type CommitRow = { group: string; topicId: number; partition: number; nextOffset: number }

export type EmbeddedStorage = {
  readonly file: string
  topics(): StoredTopic[]
  createTopic(name: string, partitions: number): StoredTopic
  /** Next offset to write per partition: past the last record, and never below what retention saved. */
  heads(topicId: number): number[]
  /** First retained offset of a partition, or undefined when it holds no record. */
  lowOffset(topicId: number, partition: number): number | undefined
  /** Writes the rows and the group positions in one transaction; durable once sync() resolves. */
  write(rows: readonly AppendRow[], commits: readonly CommitRow[], publishedAt: number): void
  /** Resolves once every transaction written so far is on disk (fdatasync of the WAL, off the loop). */
  sync(): Promise<void>
  /** Deletes rows that were written but could not be made durable (their publish is rejected). */
  discard(rows: readonly AppendRow[]): void
  read(topicId: number, partition: number, fromOffset: number, limit: number): StoredRecord[]
  committed(group: string, topicId: number): Map<number, number>
  /** Makes the group known (it then holds retention) at these positions, unless it already is. */
  register(group: string, topicId: number, positions: readonly number[]): void
  /** Lowest committed position of any known group, or undefined when no group reads the topic. */
  minCommitted(topicId: number, partition: number): number | undefined
  /** First offset in [from, to) published at or after `time`. */
  firstPublishedSince(
    topicId: number,
    partition: number,
    time: number,
    from: number,
    to: number,
  ): number | undefined
  /** Deletes the records below `offset`, first saving it as the partition's offset floor. */
  deleteBelow(topicId: number, partition: number, offset: number): number
  close(): Promise<void>
}

const schemaVersion = 1

const schema = `
CREATE TABLE IF NOT EXISTS topics (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, partitions INTEGER NOT NULL);
-- offset_floor: the next offset is at least this; retention saves it before deleting the records that
-- showed it, so offsets never restart (a publish writes records only: one b-tree, one fsync).
CREATE TABLE IF NOT EXISTS partitions (
  topic_id INTEGER NOT NULL, partition INTEGER NOT NULL, offset_floor INTEGER NOT NULL,
  PRIMARY KEY (topic_id, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
  topic_id INTEGER NOT NULL, partition INTEGER NOT NULL, record_offset INTEGER NOT NULL,
  key TEXT NOT NULL, value TEXT NOT NULL, published_at INTEGER NOT NULL,
  PRIMARY KEY (topic_id, partition, record_offset));
CREATE TABLE IF NOT EXISTS group_offsets (
  group_name TEXT NOT NULL, topic_id INTEGER NOT NULL, partition INTEGER NOT NULL,
  next_offset INTEGER NOT NULL, PRIMARY KEY (group_name, topic_id, partition)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS group_offsets_by_partition ON group_offsets (topic_id, partition, next_offset);
`

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

/** Checks the schema version and creates the tables; caps the file for STORAGE_FULL when asked. */
function prepareDatabase(db: Database.Database, file: string, maxBytes: number | undefined): void {
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > schemaVersion) {
    throw new NerveError('BUS_UNAVAILABLE', `${file} was written by a newer nerve (schema ${version}).`)
  }
  db.exec(`BEGIN IMMEDIATE; ${schema} PRAGMA user_version = ${schemaVersion}; COMMIT;`)
  if (maxBytes !== undefined) {
    const pageSize = db.pragma('page_size', { simple: true }) as number
    db.pragma(`max_page_count = ${Math.max(1, Math.floor(maxBytes / pageSize))}`)
  }
}

function openDatabase(file: string, maxBytes: number | undefined): SqliteFile {
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

export function openEmbeddedStorage(dataDir: string, opts: { maxBytes?: number } = {}): EmbeddedStorage {
  mkdirSync(dataDir, { recursive: true })
  const file = join(dataDir, 'bus.sqlite')
  const sqlite = openDatabase(file, opts.maxBytes)
  const db = sqlite.db

  const q = {
    topics: db.prepare<[], StoredTopic>('SELECT id, name, partitions FROM topics'),
    insertTopic: db.prepare<[string, number]>('INSERT INTO topics (name, partitions) VALUES (?, ?)'),
    insertPartition: db.prepare<[number, number]>(
      'INSERT INTO partitions (topic_id, partition, offset_floor) VALUES (?, ?, 0)',
    ),
    floors: db.prepare<[number], { offset_floor: number }>(
      'SELECT offset_floor FROM partitions WHERE topic_id = ? ORDER BY partition',
    ),
    last: db.prepare<[number, number], { last: number | null }>(
      'SELECT max(record_offset) AS last FROM records WHERE topic_id = ? AND partition = ?',
    ),
    raiseFloor: db.prepare<[number, number, number]>(
      'UPDATE partitions SET offset_floor = max(offset_floor, ?) WHERE topic_id = ? AND partition = ?',
    ),
    low: db.prepare<[number, number], { low: number | null }>(
      'SELECT min(record_offset) AS low FROM records WHERE topic_id = ? AND partition = ?',
    ),
    insert: db.prepare<[number, number, number, string, string, number]>(
      'INSERT INTO records (topic_id, partition, record_offset, key, value, published_at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    read: db.prepare<[number, number, number, number], StoredRecord>(
      `SELECT record_offset AS offset, key, value FROM records
       WHERE topic_id = ? AND partition = ? AND record_offset >= ? ORDER BY record_offset LIMIT ?`,
    ),
    committed: db.prepare<[string, number], { partition: number; next_offset: number }>(
      'SELECT partition, next_offset FROM group_offsets WHERE group_name = ? AND topic_id = ?',
    ),
    register: db.prepare<[string, number, number, number]>(
      'INSERT OR IGNORE INTO group_offsets (group_name, topic_id, partition, next_offset) VALUES (?, ?, ?, ?)',
    ),
    commit: db.prepare<[string, number, number, number]>(
      `INSERT INTO group_offsets (group_name, topic_id, partition, next_offset) VALUES (?, ?, ?, ?)
       ON CONFLICT (group_name, topic_id, partition) DO UPDATE SET next_offset = excluded.next_offset`,
    ),
    minCommitted: db.prepare<[number, number], { low: number | null }>(
      'SELECT min(next_offset) AS low FROM group_offsets WHERE topic_id = ? AND partition = ?',
    ),
    firstSince: db.prepare<[number, number, number, number, number], { record_offset: number }>(
      `SELECT record_offset FROM records WHERE topic_id = ? AND partition = ? AND record_offset >= ?
       AND record_offset < ? AND published_at >= ? ORDER BY record_offset LIMIT 1`,
    ),
    deleteBelow: db.prepare<[number, number, number]>(
      'DELETE FROM records WHERE topic_id = ? AND partition = ? AND record_offset < ?',
    ),
    deleteOne: db.prepare<[number, number, number]>(
      'DELETE FROM records WHERE topic_id = ? AND partition = ? AND record_offset = ?',
    ),
  }

  const createTopic = db.transaction((name: string, partitions: number): StoredTopic => {
    const id = Number(q.insertTopic.run(name, partitions).lastInsertRowid)
    for (let p = 0; p < partitions; p++) q.insertPartition.run(id, p)
    return { id, name, partitions }
  })

  const write = db.transaction((rows: readonly AppendRow[], commits: readonly CommitRow[], at: number) => {
    for (const r of rows) q.insert.run(r.topicId, r.partition, r.offset, r.key, r.value, at)
    for (const c of commits) q.commit.run(c.group, c.topicId, c.partition, c.nextOffset)
  })

  const discard = db.transaction((rows: readonly AppendRow[]) => {
    for (const r of rows) q.deleteOne.run(r.topicId, r.partition, r.offset)
  })

  const deleteBelow = db.transaction((topicId: number, partition: number, offset: number) => {
    q.raiseFloor.run(offset, topicId, partition)
    return q.deleteBelow.run(topicId, partition, offset).changes
  })

  const register = db.transaction((group: string, topicId: number, positions: readonly number[]) => {
    for (const [p, position] of positions.entries()) q.register.run(group, topicId, p, position)
  })

  return {
    file,
    topics: () => q.topics.all(),
    createTopic: (name, partitions) => createTopic(name, partitions),
    heads: (topicId) =>
      q.floors
        .all(topicId)
        .map((row, p) => Math.max(row.offset_floor, (q.last.get(topicId, p)?.last ?? -1) + 1)),
    lowOffset: (topicId, partition) => q.low.get(topicId, partition)?.low ?? undefined,
    write: (rows, commits, publishedAt) => write(rows, commits, publishedAt),
    sync: sqlite.sync,
    discard: (rows) => discard(rows),
    read: (topicId, partition, fromOffset, limit) => q.read.all(topicId, partition, fromOffset, limit),
    committed: (group, topicId) =>
      new Map(q.committed.all(group, topicId).map((row) => [row.partition, row.next_offset])),
    register: (group, topicId, positions) => register(group, topicId, positions),
    minCommitted: (topicId, partition) => q.minCommitted.get(topicId, partition)?.low ?? undefined,
    firstPublishedSince: (topicId, partition, time, from, to) =>
      q.firstSince.get(topicId, partition, from, to, time)?.record_offset,
    deleteBelow: (topicId, partition, offset) => deleteBelow(topicId, partition, offset),
    close: () => sqlite.close(),
  }
}
