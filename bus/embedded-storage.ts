// The embedded bus's disk: one SQLite file (better-sqlite3), opened by embedded-file.ts and owned by one
// process. Every write is one transaction: a publish lands whole or not at all, and is durable once sync()
// resolves. Offsets are contiguous per (topic, partition). Records are stored in segments
// (embedded-segments.ts).
import { mkdirSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { NerveError } from '../runtime/errors.ts'
import type { RawSpan } from './bus.ts'
import { openBusFile } from './embedded-file.ts'
import {
  addRawSpan,
  firstPublishedSinceSql,
  type OpenSegment,
  rawsColumn,
  type SegmentRow,
  segmentRawSpans,
  segmentRecords,
  splitSegment,
  trimmedRaws,
} from './embedded-segments.ts'

export type StoredTopic = { id: number; name: string; partitions: number }
export type StoredRecord = { offset: number; key: string; value: string }
export type AppendRow = {
  topicId: number
  partition: number
  offset: number
  key: string
  value: string
  /** Where `raw`'s value lies in `value`, when its writer said (BusRecord.rawSpan). */
  rawSpan?: RawSpan
}
export type CommitRow = { group: string; topicId: number; partition: number; nextOffset: number }
/** A group's position as it was before a write: `nextOffset` undefined when the write created it. */
export type PriorPosition = Omit<CommitRow, 'nextOffset'> & { nextOffset: number | undefined }

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
   * Does the file take a publish? Writes one page and changes nothing (the schema version, rewritten as it
   * is), and throws STORAGE_FULL unless the disk, and the file under its cap, have room for probeRoomBytes.
   */
  probe(): void
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

/**
 * The room a probe asks for: two of the largest transactions a group commit writes (embedded-group-commit.ts,
 * 512 KB each). A page rewritten in place succeeds on a disk with no free block, and the next publish then
 * fails: `/readyz` flipped every 2 s on a full disk.
 */
export const probeRoomBytes = 2 * 512 * 1024

/** Bytes of the file system holding `dir` that an unprivileged process may still write. */
const diskFreeBytes = (dir: string): number => {
  const stats = statfsSync(dir)
  return stats.bavail * stats.bsize
}

export function openEmbeddedStorage(
  dataDir: string,
  opts: { maxBytes?: number; diskFree?: (dir: string) => number } = {},
): EmbeddedStorage {
  mkdirSync(dataDir, { recursive: true })
  const file = join(dataDir, 'bus.sqlite')
  const sqlite = openBusFile(file, opts.maxBytes)
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
    insert: db.prepare<[number, number, number, number, string, string, string | null, number]>(
      `INSERT INTO segments (topic_id, partition, last_offset, first_offset, keys, vals, raws, published_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    /** The segments holding offsets from the given one on, in order. */
    from: db.prepare<[number, number, number], SegmentRow>(
      `SELECT first_offset, last_offset, keys, vals, raws FROM segments
       WHERE topic_id = ? AND partition = ? AND last_offset >= ? ORDER BY last_offset`,
    ),
    trim: db.prepare<[number, string, string, string | null, number, number, number]>(
      `UPDATE segments SET first_offset = ?, keys = ?, vals = ?, raws = ?
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
      rawsColumn(open),
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
        addRawSpan(segment, r.rawSpan)
        continue
      }
      if (segment) insertSegment(segment.topicId, segment.partition, segment, at)
      const opened: OpenSegment & { topicId: number; partition: number } = {
        topicId: r.topicId,
        partition: r.partition,
        first: r.offset,
        last: r.offset,
        keys: [r.key],
        vals: [r.value],
      }
      addRawSpan(opened, r.rawSpan)
      open.set(where, opened)
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
        trimmedRaws(segmentRawSpans(straddling), offset, cut),
        topicId,
        partition,
        straddling.last_offset,
      )
      deleted += cut
    }
    return deleted
  })

  const storageFull = (why: string) =>
    new NerveError('STORAGE_FULL', `Bus storage is full (${why}); nothing was written.`, { retriable: true })

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
    probe: () => {
      const version = db.pragma('user_version', { simple: true }) as number
      db.pragma(`user_version = ${version}`)
      const free = (opts.diskFree ?? diskFreeBytes)(dataDir)
      if (free < probeRoomBytes) throw storageFull(`${free} bytes free on its disk`)
      if (opts.maxBytes !== undefined) {
        // Under a cap smaller than four such groups, a quarter of it: a publish of that size fits.
        const room = Math.min(probeRoomBytes, opts.maxBytes / 4)
        const pageSize = db.pragma('page_size', { simple: true }) as number
        const used =
          pageSize *
          ((db.pragma('page_count', { simple: true }) as number) -
            (db.pragma('freelist_count', { simple: true }) as number))
        if (opts.maxBytes - used < room) throw storageFull(`${opts.maxBytes - used} bytes left under its cap`)
      }
    },
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
