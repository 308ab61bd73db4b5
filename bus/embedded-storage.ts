// The embedded bus's disk: one SQLite file (better-sqlite3), opened through runtime/sqlite-file.ts (WAL,
// the fsync and the checkpoints off the event loop) and owned by one process. Every write is one
// transaction: a publish lands whole or not at all, and is durable once sync() resolves. Offsets are
// contiguous per (topic, partition).
// Records are stored in segments: one row per run of consecutive offsets of a partition written by one
// write() (at most `segmentRecords`), their JSON texts joined by newlines (JSON.stringify never writes a raw
// newline) and their keys as a JSON array. One insert per partition per transaction instead of one per
// record halves the CPU of a publish's SQLite work (about 10 → 5 µs per 2 KB event), and the values fill
// whole pages. Schema 1 (a row per record) is moved into one-record segments when opened.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { NerveError } from '../runtime/errors.ts'
import { openSqliteFile, type SqliteFile } from '../runtime/sqlite-file.ts'

export type StoredTopic = { id: number; name: string; partitions: number }
export type StoredRecord = { offset: number; key: string; value: string }
export type AppendRow = { topicId: number; partition: number; offset: number; key: string; value: string }
export type CommitRow = { group: string; topicId: number; partition: number; nextOffset: number }
/** A group's position as it was before a write: `nextOffset` undefined when the write created it. */
export type PriorPosition = Omit<CommitRow, 'nextOffset'> & { nextOffset: number | undefined }
type SegmentRow = { first_offset: number; last_offset: number; keys: string; vals: string }
type OpenSegment = { first: number; last: number; keys: string[]; vals: string[] }

function splitSegment(segment: SegmentRow): { keys: string[]; vals: string[] } {
  return {
    keys: JSON.parse(segment.keys) as string[],
    vals: segment.first_offset === segment.last_offset ? [segment.vals] : segment.vals.split('\n'),
  }
}

export type EmbeddedStorage = {
  readonly file: string
  topics(): StoredTopic[]
  createTopic(name: string, partitions: number): StoredTopic
  /** Next offset to write per partition: past the last record, and never below what retention saved. */
  heads(topicId: number): number[]
  /** First retained offset of a partition, or undefined when it holds no record. */
  lowOffset(topicId: number, partition: number): number | undefined
  /**
   * Writes the rows and the group positions in one transaction; durable once sync() resolves. Returns the
   * positions as they were before it (what discard() puts back should the write not become durable).
   */
  write(rows: readonly AppendRow[], commits: readonly CommitRow[], publishedAt: number): PriorPosition[]
  /** Resolves once every transaction written so far is on disk (fdatasync of the WAL, off the loop). */
  sync(): Promise<void>
  /**
   * Takes back writes that could not be made durable, in one transaction: deletes their rows (their publish
   * is rejected) and puts the group positions they moved back where they were (their commit is rejected).
   */
  discard(rows: readonly AppendRow[], positions?: readonly PriorPosition[]): void
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

// Schema 3: an edge event's record may hold null where its alert's output is (bus/record-json.ts). A nerve of
// schema 2 reads its file's records as stored and would see those events without their output: it refuses
// the file instead ("written by a newer nerve"). Nothing in the tables changed, so 2 opens as 3.
const schemaVersion = 3
/** Most records in one segment: a read from disk (a consumer catching up) splits at most this many. */
export const segmentRecords = 256

// The segments that can hold offsets [from, to): last_offset >= from and first_offset < to. As no segment
// holds more than segmentRecords, last_offset < to - 1 + segmentRecords bounds the index range above too;
// without it the search went through every segment after the range (a backlog) to check its first_offset.
/** Parameters: topic, partition, from, to - 1 + segmentRecords, to. */
export const segmentsInRangeSql = `SELECT first_offset, last_offset, keys, vals FROM segments
  WHERE topic_id = ? AND partition = ? AND last_offset >= ? AND last_offset < ? AND first_offset < ?
  ORDER BY last_offset`
/** Parameters: topic, partition, from, to - 1 + segmentRecords, to, time. */
export const firstPublishedSinceSql = `SELECT first_offset FROM segments
  WHERE topic_id = ? AND partition = ? AND last_offset >= ? AND last_offset < ? AND first_offset < ?
  AND published_at >= ? ORDER BY last_offset LIMIT 1`

const schema = `
CREATE TABLE IF NOT EXISTS topics (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, partitions INTEGER NOT NULL);
-- offset_floor: the next offset is at least this; retention saves it before deleting the records that
-- showed it, so offsets never restart (a publish writes records only: one b-tree, one fsync).
CREATE TABLE IF NOT EXISTS partitions (
  topic_id INTEGER NOT NULL, partition INTEGER NOT NULL, offset_floor INTEGER NOT NULL,
  PRIMARY KEY (topic_id, partition)) WITHOUT ROWID;
-- Records first_offset..last_offset of a partition: keys a JSON array, vals their JSON texts joined by
-- newlines (one text when count = 1), all published (written) at published_at.
CREATE TABLE IF NOT EXISTS segments (
  topic_id INTEGER NOT NULL, partition INTEGER NOT NULL, last_offset INTEGER NOT NULL,
  first_offset INTEGER NOT NULL, keys TEXT NOT NULL, vals TEXT NOT NULL, published_at INTEGER NOT NULL,
  PRIMARY KEY (topic_id, partition, last_offset));
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

/** Runs `run`, its SQLite failure thrown as storageError() maps it. */
export function withStorage<R>(doing: string, run: () => R): R {
  try {
    return run()
  } catch (err) {
    throw storageError(err, doing)
  }
}

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
      'SELECT max(last_offset) AS last FROM segments WHERE topic_id = ? AND partition = ?',
    ),
    raiseFloor: db.prepare<[number, number, number]>(
      'UPDATE partitions SET offset_floor = max(offset_floor, ?) WHERE topic_id = ? AND partition = ?',
    ),
    low: db.prepare<[number, number], { low: number }>(
      'SELECT first_offset AS low FROM segments WHERE topic_id = ? AND partition = ? ORDER BY last_offset LIMIT 1',
    ),
    insert: db.prepare<[number, number, number, number, string, string, number]>(
      `INSERT INTO segments (topic_id, partition, last_offset, first_offset, keys, vals, published_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    /** The segments holding offsets from the given one on, in order. */
    from: db.prepare<[number, number, number], SegmentRow>(
      `SELECT first_offset, last_offset, keys, vals FROM segments
       WHERE topic_id = ? AND partition = ? AND last_offset >= ? ORDER BY last_offset`,
    ),
    trim: db.prepare<[number, string, string, number, number, number]>(
      `UPDATE segments SET first_offset = ?, keys = ?, vals = ?
       WHERE topic_id = ? AND partition = ? AND last_offset = ?`,
    ),
    committed: db.prepare<[string, number], { partition: number; next_offset: number }>(
      'SELECT partition, next_offset FROM group_offsets WHERE group_name = ? AND topic_id = ?',
    ),
    register: db.prepare<[string, number, number, number]>(
      'INSERT OR IGNORE INTO group_offsets (group_name, topic_id, partition, next_offset) VALUES (?, ?, ?, ?)',
    ),
    position: db.prepare<[string, number, number], { next_offset: number }>(
      'SELECT next_offset FROM group_offsets WHERE group_name = ? AND topic_id = ? AND partition = ?',
    ),
    forget: db.prepare<[string, number, number]>(
      'DELETE FROM group_offsets WHERE group_name = ? AND topic_id = ? AND partition = ?',
    ),
    commit: db.prepare<[string, number, number, number]>(
      `INSERT INTO group_offsets (group_name, topic_id, partition, next_offset) VALUES (?, ?, ?, ?)
       ON CONFLICT (group_name, topic_id, partition) DO UPDATE SET next_offset = excluded.next_offset`,
    ),
    minCommitted: db.prepare<[number, number], { low: number | null }>(
      'SELECT min(next_offset) AS low FROM group_offsets WHERE topic_id = ? AND partition = ?',
    ),
    firstSince: db.prepare<[number, number, number, number, number, number], { first_offset: number }>(
      firstPublishedSinceSql,
    ),
    countBelow: db.prepare<[number, number, number], { n: number | null }>(
      `SELECT sum(last_offset - first_offset + 1) AS n FROM segments
       WHERE topic_id = ? AND partition = ? AND last_offset < ?`,
    ),
    deleteBelow: db.prepare<[number, number, number]>(
      'DELETE FROM segments WHERE topic_id = ? AND partition = ? AND last_offset < ?',
    ),
    deleteFrom: db.prepare<[number, number, number]>(
      'DELETE FROM segments WHERE topic_id = ? AND partition = ? AND last_offset >= ?',
    ),
  }

  const insertSegment = (topicId: number, partition: number, open: OpenSegment, at: number) =>
    q.insert.run(
      topicId,
      partition,
      open.last,
      open.first,
      JSON.stringify(open.keys),
      open.vals.join('\n'),
      at,
    )

  const createTopic = db.transaction((name: string, partitions: number): StoredTopic => {
    const id = Number(q.insertTopic.run(name, partitions).lastInsertRowid)
    for (let p = 0; p < partitions; p++) q.insertPartition.run(id, p)
    return { id, name, partitions }
  })

  const write = db.transaction((rows: readonly AppendRow[], commits: readonly CommitRow[], at: number) => {
    // Rows of several partitions interleave; each partition's run of consecutive offsets is one segment.
    const open = new Map<string, OpenSegment & { topicId: number; partition: number }>()
    for (const r of rows) {
      const where = `${r.topicId}:${r.partition}`
      const segment = open.get(where)
      if (segment && segment.last + 1 === r.offset && segment.keys.length < segmentRecords) {
        segment.last = r.offset
        segment.keys.push(r.key)
        segment.vals.push(r.value)
        continue
      }
      if (segment) insertSegment(segment.topicId, segment.partition, segment, at)
      open.set(where, {
        topicId: r.topicId,
        partition: r.partition,
        first: r.offset,
        last: r.offset,
        keys: [r.key],
        vals: [r.value],
      })
    }
    for (const segment of open.values()) insertSegment(segment.topicId, segment.partition, segment, at)
    const prior: PriorPosition[] = []
    for (const c of commits) {
      const before = q.position.get(c.group, c.topicId, c.partition)?.next_offset
      prior.push({ group: c.group, topicId: c.topicId, partition: c.partition, nextOffset: before })
      q.commit.run(c.group, c.topicId, c.partition, c.nextOffset)
    }
    return prior
  })

  /** The rows of the last writes (nothing was written after them): every segment from each partition's first. */
  const discard = db.transaction((rows: readonly AppendRow[], positions: readonly PriorPosition[]) => {
    const firsts = new Map<string, AppendRow>()
    for (const r of rows) {
      const where = `${r.topicId}:${r.partition}`
      const first = firsts.get(where)
      if (!first || r.offset < first.offset) firsts.set(where, r)
    }
    for (const r of firsts.values()) q.deleteFrom.run(r.topicId, r.partition, r.offset)
    // In reverse, so that a position moved twice ends where it was before the first move.
    for (let i = positions.length - 1; i >= 0; i--) {
      const c = positions[i] as PriorPosition
      if (c.nextOffset === undefined) q.forget.run(c.group, c.topicId, c.partition)
      else q.commit.run(c.group, c.topicId, c.partition, c.nextOffset)
    }
  })

  const read = (topicId: number, partition: number, fromOffset: number, limit: number): StoredRecord[] => {
    const records: StoredRecord[] = []
    if (limit <= 0) return records
    for (const segment of q.from.iterate(topicId, partition, fromOffset)) {
      const { keys, vals } = splitSegment(segment)
      const first = segment.first_offset
      for (let offset = Math.max(fromOffset, first); offset <= segment.last_offset; offset++) {
        records.push({ offset, key: keys[offset - first] as string, value: vals[offset - first] as string })
        if (records.length === limit) return records
      }
    }
    return records
  }

  const deleteBelow = db.transaction((topicId: number, partition: number, offset: number) => {
    q.raiseFloor.run(offset, topicId, partition)
    let deleted = q.countBelow.get(topicId, partition, offset)?.n ?? 0
    q.deleteBelow.run(topicId, partition, offset)
    // A segment holding the offset keeps its records from it on.
    const straddling = q.from.get(topicId, partition, offset)
    if (straddling && straddling.first_offset < offset) {
      const { keys, vals } = splitSegment(straddling)
      const cut = offset - straddling.first_offset
      q.trim.run(
        offset,
        JSON.stringify(keys.slice(cut)),
        vals.slice(cut).join('\n'),
        topicId,
        partition,
        straddling.last_offset,
      )
      deleted += cut
    }
    return deleted
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
    discard: (rows, positions = []) => discard(rows, positions),
    read,
    committed: (group, topicId) =>
      new Map(q.committed.all(group, topicId).map((row) => [row.partition, row.next_offset])),
    register: (group, topicId, positions) => register(group, topicId, positions),
    minCommitted: (topicId, partition) => q.minCommitted.get(topicId, partition)?.low ?? undefined,
    firstPublishedSince: (topicId, partition, time, from, to) => {
      const first = q.firstSince.get(
        topicId,
        partition,
        from,
        to - 1 + segmentRecords,
        to,
        time,
      )?.first_offset
      return first === undefined ? undefined : Math.max(first, from)
    },
    deleteBelow: (topicId, partition, offset) => deleteBelow(topicId, partition, offset),
    close: () => sqlite.close(),
  }
}

export type RecordReader = {
  /** Records [from, to) of a topic's partition that are on disk, in order (none when the topic is unknown). */
  read(topic: string, partition: number, from: number, to: number): StoredRecord[]
  close(): void
}

/**
 * A read-only connection to a bus file that another thread (or process) writes: for a stage on a worker
 * thread that reads its records itself rather than receive them through the writer's thread. It sees every
 * transaction committed before each read (WAL), so every record the bus has handed out.
 */
export function openRecordReader(file: string): RecordReader {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  const topicId = db.prepare<[string], { id: number }>('SELECT id FROM topics WHERE name = ?')
  const from = db.prepare<[number, number, number, number, number], SegmentRow>(segmentsInRangeSql)
  const ids = new Map<string, number>()
  return {
    read: (topic, partition, fromOffset, to) => {
      let id = ids.get(topic)
      if (id === undefined) {
        id = topicId.get(topic)?.id
        if (id === undefined) return []
        ids.set(topic, id)
      }
      const records: StoredRecord[] = []
      for (const segment of from.iterate(id, partition, fromOffset, to - 1 + segmentRecords, to)) {
        const { keys, vals } = splitSegment(segment)
        const first = segment.first_offset
        const last = Math.min(segment.last_offset, to - 1)
        for (let offset = Math.max(fromOffset, first); offset <= last; offset++)
          records.push({ offset, key: keys[offset - first] as string, value: vals[offset - first] as string })
      }
      return records
    },
    close: () => db.close(),
  }
}
