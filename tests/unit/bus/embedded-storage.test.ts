// The embedded bus's file: records stored as segments (a row per partition's run of a write), read back
// whole or from the middle, trimmed by retention, and a file written by the previous version (a row per
// record, schema 1) opened with every record and group position kept.
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import type { DeliveredRecord } from '../../../bus/bus.ts'
import { createEmbeddedBus } from '../../../bus/embedded-bus.ts'
import { openRecordReader } from '../../../bus/embedded-record-reader.ts'
import { firstPublishedSinceSql, segmentRecords, segmentsInRangeSql } from '../../../bus/embedded-segments.ts'
import { type AppendRow, openEmbeddedStorage, probeRoomBytes } from '../../../bus/embedded-storage.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
const newDir = () => {
  const dir = tempDir('nerve-bus-storage')
  dirs.push(dir)
  return dir
}

const rowsOf = (topicId: number, partition: number, from: number, count: number): AppendRow[] =>
  Array.from({ length: count }, (_, i) => ({
    topicId,
    partition,
    offset: from + i,
    key: `key-${(from + i) % 3}`,
    value: JSON.stringify({ seq: from + i, text: 'line\nbreak' }),
  }))

/** The tables of schema 1, a row per record, as the previous version wrote them. */
const schema1 = `
      CREATE TABLE topics (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, partitions INTEGER NOT NULL);
      CREATE TABLE partitions (topic_id INTEGER NOT NULL, partition INTEGER NOT NULL,
        offset_floor INTEGER NOT NULL, PRIMARY KEY (topic_id, partition)) WITHOUT ROWID;
      CREATE TABLE records (topic_id INTEGER NOT NULL, partition INTEGER NOT NULL,
        record_offset INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, published_at INTEGER NOT NULL,
        PRIMARY KEY (topic_id, partition, record_offset));
      CREATE TABLE group_offsets (group_name TEXT NOT NULL, topic_id INTEGER NOT NULL,
        partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
        PRIMARY KEY (group_name, topic_id, partition)) WITHOUT ROWID;
      CREATE INDEX group_offsets_by_partition ON group_offsets (topic_id, partition, next_offset);`

describe('embedded storage', () => {
  it('writes one row per partition run, and reads any range back in order, from the middle of a segment', async () => {
    const storage = openEmbeddedStorage(newDir())
    const topic = storage.createTopic('t', 2)
    // Two partitions interleaved in one write, more records than one segment holds.
    const a = rowsOf(topic.id, 0, 0, segmentRecords + 10)
    const b = rowsOf(topic.id, 1, 0, 5)
    storage.write([...a.slice(0, 3), ...b, ...a.slice(3)], [], 1_000)
    storage.write(rowsOf(topic.id, 0, segmentRecords + 10, 4), [], 2_000)
    expect(storage.heads(topic.id)).toEqual([segmentRecords + 14, 5])
    const rows = storage.read(topic.id, 0, 7, segmentRecords)
    expect(rows.map((r) => r.offset)).toEqual(Array.from({ length: segmentRecords }, (_, i) => 7 + i))
    expect(JSON.parse(rows[0]?.value ?? '')).toEqual({ seq: 7, text: 'line\nbreak' })
    expect(rows[0]?.key).toBe('key-1')
    expect(storage.read(topic.id, 1, 3, 10).map((r) => r.offset)).toEqual([3, 4])
    expect(storage.read(topic.id, 0, segmentRecords + 12, 10).map((r) => r.offset)).toEqual([
      segmentRecords + 12,
      segmentRecords + 13,
    ])
    // Published at 2,000: the first record of the second write.
    expect(storage.firstPublishedSince(topic.id, 0, 2_000, 0, segmentRecords + 14)).toBe(segmentRecords + 10)
    expect(storage.firstPublishedSince(topic.id, 0, 1_000, 5, 10)).toBe(5)
    await storage.close()
  })

  it('looks only at the segments that can hold a range, not at every one after it', async () => {
    const storage = openEmbeddedStorage(newDir())
    const topic = storage.createTopic('t', 1)
    // A full segment, then one-record segments after it (single alerts under light load).
    storage.write(rowsOf(topic.id, 0, 0, segmentRecords), [], 1_000)
    for (let offset = segmentRecords; offset < segmentRecords + 5; offset++)
      storage.write(rowsOf(topic.id, 0, offset, 1), [], 2_000)
    // A range that ends inside the full segment still finds it (its last offset is past the range).
    const reader = openRecordReader(storage.file)
    expect(reader.read('t', 0, 0, 1).map((r) => r.offset)).toEqual([0])
    expect(reader.read('t', 0, 3, segmentRecords + 2).map((r) => r.offset)).toEqual(
      Array.from({ length: segmentRecords - 1 }, (_, i) => 3 + i),
    )
    expect(storage.firstPublishedSince(topic.id, 0, 1_000, 0, 1)).toBe(0)
    expect(storage.firstPublishedSince(topic.id, 0, 2_000, 0, segmentRecords + 1)).toBe(segmentRecords)
    expect(storage.firstPublishedSince(topic.id, 0, 2_000, 0, segmentRecords)).toBeUndefined()
    reader.close()
    // Unbounded above, every segment after the range was visited: a worker catching up on a backlog of
    // 200,000 one-record segments took 3.9 s per batch of 500, a retention chunk 3.2 s of the event loop.
    const db = new Database(storage.file, { readonly: true })
    for (const sql of [segmentsInRangeSql, firstPublishedSinceSql]) {
      const plan = db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .all(...Array.from({ length: sql.split('?').length - 1 }, () => 0))
        .map((row) => (row as { detail: string }).detail)
      expect(plan.join(' ')).toMatch(/last_offset>\? AND last_offset<\?/)
    }
    db.close()
    await storage.close()
  })

  it('probes as full when a publish would not fit: on a disk with one free page, or at its cap', async () => {
    // The probe rewrites a page the file has: that succeeds with no free block, and /readyz said ready.
    let free = 4096
    const onDisk = openEmbeddedStorage(newDir(), { diskFree: () => free })
    expect(() => onDisk.probe()).toThrow(expect.objectContaining({ code: 'STORAGE_FULL', retriable: true }))
    free = probeRoomBytes
    expect(() => onDisk.probe()).not.toThrow()
    await onDisk.close()

    const capped = openEmbeddedStorage(newDir(), { maxBytes: 256 * 1024 })
    const topic = capped.createTopic('t', 1)
    capped.probe()
    const pad = 'x'.repeat(1024)
    let offset = 0
    const fill = () => {
      const rows = rowsOf(topic.id, 0, offset, 20).map((r) => ({ ...r, value: JSON.stringify({ pad }) }))
      capped.write(rows, [], 1)
      offset += 20
    }
    expect(() => {
      for (;;) fill()
    }).toThrow(expect.objectContaining({ code: 'SQLITE_FULL' }))
    expect(() => capped.probe()).toThrow(expect.objectContaining({ code: 'STORAGE_FULL' }))
    // Retention frees pages under the cap: the probe says ready again.
    capped.deleteBelow(topic.id, 0, offset)
    expect(() => capped.probe()).not.toThrow()
    await capped.close()
  })

  it('deletes below an offset inside a segment, keeping the rest of it', async () => {
    const storage = openEmbeddedStorage(newDir())
    const topic = storage.createTopic('t', 1)
    storage.write(rowsOf(topic.id, 0, 0, 30), [], 1_000)
    expect(storage.deleteBelow(topic.id, 0, 12)).toBe(12)
    expect(storage.lowOffset(topic.id, 0)).toBe(12)
    expect(storage.read(topic.id, 0, 0, 100).map((r) => r.offset)).toEqual(
      Array.from({ length: 18 }, (_, i) => 12 + i),
    )
    expect(storage.deleteBelow(topic.id, 0, 30)).toBe(18)
    expect(storage.lowOffset(topic.id, 0)).toBeUndefined()
    expect(storage.heads(topic.id)).toEqual([30])
    await storage.close()
  })

  it('takes back a write: its records, and its group positions to where they were (or to none)', async () => {
    const storage = openEmbeddedStorage(newDir())
    const topic = storage.createTopic('t', 2)
    storage.register('known', topic.id, [0, 0])
    storage.write(
      rowsOf(topic.id, 0, 0, 5),
      [{ group: 'known', topicId: topic.id, partition: 0, nextOffset: 3 }],
      1,
    )
    const rows = rowsOf(topic.id, 0, 5, 4)
    const prior = storage.write(
      rows,
      [
        { group: 'known', topicId: topic.id, partition: 0, nextOffset: 5 },
        { group: 'new', topicId: topic.id, partition: 1, nextOffset: 7 },
      ],
      2,
    )
    expect(prior).toEqual([
      { group: 'known', topicId: topic.id, partition: 0, nextOffset: 3 },
      { group: 'new', topicId: topic.id, partition: 1, nextOffset: undefined },
    ])
    storage.discard(rows, prior)
    expect(storage.read(topic.id, 0, 0, 100).map((r) => r.offset)).toEqual([0, 1, 2, 3, 4])
    expect(storage.committed('known', topic.id)).toEqual(
      new Map([
        [0, 3],
        [1, 0],
      ]),
    )
    expect(storage.committed('new', topic.id)).toEqual(new Map())
    await storage.close()
  })

  it('opens a file written by the previous version (a row per record), keeping records and positions', async () => {
    const dataDir = newDir()
    mkdirSync(dataDir, { recursive: true })
    const old = new Database(join(dataDir, 'bus.sqlite'))
    old.pragma('journal_mode = WAL')
    old.exec(`${schema1}
      INSERT INTO topics VALUES (1, 'nerve.events.v1', 1);
      INSERT INTO partitions VALUES (1, 0, 2);
      INSERT INTO group_offsets VALUES ('g', 1, 0, 3);
      PRAGMA user_version = 1;`)
    const insert = old.prepare('INSERT INTO records VALUES (1, 0, ?, ?, ?, 500)')
    for (let offset = 2; offset < 6; offset++)
      insert.run(offset, `agent-${offset}`, JSON.stringify({ offset }))
    old.close()

    const bus = createEmbeddedBus(
      { dataDir, partitions: 1, retentionMs: 86_400_000, maxBatch: 10 },
      createTestRuntime(),
    )
    try {
      await bus.publish({ name: 'nerve.events.v1' }, [{ key: 'agent-6', value: { offset: 6 } }])
      const seen = async (group: string, count: number) => {
        const handled: DeliveredRecord<unknown>[] = []
        const sub = await bus.subscribe({ name: 'nerve.events.v1' }, group, async (batch) => {
          handled.push(...batch)
        })
        const deadline = Date.now() + 5_000
        while (handled.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
        await sub.stop()
        return handled.map((r) => [r.offset, r.key, r.value])
      }
      // The group resumes at its committed position; a new group starts at the oldest record kept.
      expect(await seen('g', 4)).toEqual([
        [3, 'agent-3', { offset: 3 }],
        [4, 'agent-4', { offset: 4 }],
        [5, 'agent-5', { offset: 5 }],
        [6, 'agent-6', { offset: 6 }],
      ])
      expect((await seen('new', 5)).map(([offset]) => offset)).toEqual([2, 3, 4, 5, 6])
    } finally {
      await bus.close()
    }
    const reader = new Database(join(dataDir, 'bus.sqlite'), { readonly: true })
    expect(reader.pragma('user_version', { simple: true })).toBe(3)
    expect(reader.prepare("SELECT name FROM sqlite_master WHERE name = 'records'").get()).toBeUndefined()
    reader.close()
  })

  it('opens a schema 2 file as schema 3, and refuses a file of a newer nerve rather than misread it', async () => {
    const dataDir = newDir()
    const file = join(dataDir, 'bus.sqlite')
    const storage = openEmbeddedStorage(dataDir)
    await storage.close()
    const setVersion = (v: number) => {
      const db = new Database(file)
      db.pragma(`user_version = ${v}`)
      db.close()
    }
    // Schema 2 stored every record whole, which schema 3 still reads: nothing to convert.
    setVersion(2)
    await openEmbeddedStorage(dataDir).close()
    const reader = new Database(file, { readonly: true })
    expect(reader.pragma('user_version', { simple: true })).toBe(3)
    reader.close()
    // What a nerve of schema 2 does with this file, one version on: it would not know an edge record's
    // output is kept once, in raw.
    setVersion(4)
    expect(() => openEmbeddedStorage(dataDir)).toThrow(/written by a newer nerve \(schema 4\)/)
  })

  it("converts a previous version's file in place: the segments reuse the records' pages", async () => {
    const dataDir = newDir()
    mkdirSync(dataDir, { recursive: true })
    const file = join(dataDir, 'bus.sqlite')
    const old = new Database(file)
    old.pragma('journal_mode = WAL')
    old.exec(`${schema1}
      INSERT INTO topics VALUES (1, 'nerve.events.v1', 2);
      INSERT INTO partitions VALUES (1, 0, 0), (1, 1, 0);
      PRAGMA user_version = 1;`)
    const insert = old.prepare('INSERT INTO records VALUES (1, ?, ?, ?, ?, 500)')
    const records = 10_000
    old.transaction(() => {
      for (let i = 0; i < records; i++)
        insert.run(i % 2, Math.floor(i / 2), `agent-${i}`, JSON.stringify({ i, pad: 'x'.repeat(1_000) }))
    })()
    old.pragma('wal_checkpoint(TRUNCATE)')
    const pagesBefore = old.pragma('page_count', { simple: true }) as number
    old.close()

    const storage = openEmbeddedStorage(dataDir)
    expect(storage.heads(1)).toEqual([records / 2, records / 2])
    expect(storage.read(1, 1, 4_990, 10).map((r) => JSON.parse(r.value).i)).toEqual(
      Array.from({ length: 10 }, (_, k) => 2 * (4_990 + k) + 1),
    )
    await storage.close()
    const after = new Database(file, { readonly: true })
    const pagesAfter = after.pragma('page_count', { simple: true }) as number
    after.close()
    // Copied whole and then dropped, the file doubled (the records' pages left free in it for good).
    expect(pagesAfter).toBeLessThan(pagesBefore * 1.25)
  })
})
