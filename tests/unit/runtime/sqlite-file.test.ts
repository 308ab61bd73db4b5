import { closeSync, openSync, readSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { NerveError } from '../../../runtime/errors.ts'
import { openSqliteFile, type SqliteFile } from '../../../runtime/sqlite-file.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { threadNames, threadsNamed } from '../../helpers/thread-names.ts'
import { waitFor } from '../../helpers/wait-for.ts'

const opened: SqliteFile[] = []
afterEach(async () => {
  for (const f of opened.splice(0)) await f.close()
})
const open = (file: string, options?: Parameters<typeof openSqliteFile>[1]) => {
  const f = openSqliteFile(file, options)
  opened.push(f)
  return f
}

const record = 'x'.repeat(1400)

describe('sqlite file', () => {
  // Started at the first sync, each isolate's checkpointer (the main thread's, the correlate and store
  // threads') started under the first commits, and the CPU of its start was counted in theirs.
  it.skipIf(threadNames() === undefined)(
    'starts the checkpointer thread with the first file, before any commit, and ends it with the last (skipped without /proc)',
    async () => {
      expect(threadsNamed('nerve-sqlite')).toBe(0)
      const dir = tempDir('nerve-sqlite')
      const a = openSqliteFile(join(dir, 'a.sqlite'))
      await waitFor(() => threadsNamed('nerve-sqlite') === 1, { what: 'the checkpointer thread' })
      const b = openSqliteFile(join(dir, 'b.sqlite'))
      b.db.exec('CREATE TABLE t (n INTEGER)')
      await b.sync()
      expect(threadsNamed('nerve-sqlite')).toBe(1)
      await a.close()
      expect(threadsNamed('nerve-sqlite')).toBe(1)
      await b.close()
      await waitFor(() => threadsNamed('nerve-sqlite') === 0, { what: 'the thread to end' })
    },
  )

  it('keeps every synced commit across a reopen', async () => {
    const file = join(tempDir('nerve-sqlite'), 'a.sqlite')
    const first = open(file)
    first.db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT)')
    const insert = first.db.prepare('INSERT INTO t (n, v) VALUES (?, ?)')
    for (let n = 0; n < 500; n++) {
      insert.run(n, record)
      await first.sync()
    }
    await first.close()
    opened.pop()
    const again = open(file)
    expect(again.db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 500 })
  })

  it('checkpoints in the background so the WAL stays bounded under a steady stream of commits', async () => {
    const file = join(tempDir('nerve-sqlite'), 'b.sqlite')
    const maxWalBytes = 1024 * 1024
    const f = open(file, { maxWalBytes })
    f.db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT)')
    const insert = f.db.prepare('INSERT INTO t (n, v) VALUES (?, ?)')
    const batch = f.db.transaction((from: number) => {
      for (let n = from; n < from + 50; n++) insert.run(n, record)
    })
    // 14 MB written in all, more than 10 times the WAL bound.
    for (let from = 0; from < 10_000; from += 50) {
      batch(from)
      await f.sync()
    }
    expect(statSync(`${file}-wal`).size).toBeLessThan(4 * maxWalBytes)
    // What was checkpointed is in the database file itself.
    await waitFor(() => statSync(file).size > 10 * 1024 * 1024)
    expect(f.db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 10_000 })
  })

  it('restarts the WAL after a background checkpoint, long before maxWalBytes, under a steady stream of commits', async () => {
    const file = join(tempDir('nerve-sqlite'), 'd.sqlite')
    const restartWalBytes = 512 * 1024
    // maxWalBytes out of reach: only the restart after a background checkpoint can bound the WAL here.
    const f = open(file, { maxWalBytes: 1024 * 1024 * 1024, restartWalBytes, checkpointEveryMs: 10 })
    f.db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT)')
    const insert = f.db.prepare('INSERT INTO t (n, v) VALUES (?, ?)')
    const batch = f.db.transaction((from: number) => {
      for (let n = from; n < from + 50; n++) insert.run(n, record)
    })
    // The checkpointer thread starts with the first checkpoint, which takes a second or two on a loaded
    // machine: commit until it has copied something, so the measure below is of the restart alone.
    let from = 0
    while (statSync(file).size < 64 * 1024) {
      batch(from)
      from += 50
      await f.sync()
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    let largest = 0
    // 56 MB written in all; without the restart the WAL holds all of it (a PASSIVE checkpoint never
    // catches up with commits that keep coming). With it, the WAL holds what was written while one
    // background checkpoint ran: a few hundred KB on a quiet machine, megabytes on a loaded one (over
    // 14 MB once, at load 11). Half of what was written is the bound: a mechanism, not a speed.
    for (const end = from + 40_000; from < end; from += 50) {
      batch(from)
      await f.sync()
      largest = Math.max(largest, statSync(`${file}-wal`).size)
    }
    expect(largest).toBeLessThan(28 * 1024 * 1024)
    expect(f.db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: from })
  })

  it('restarts the WAL by what was written since its last restart, and writes over its file rather than truncating it', async () => {
    const file = join(tempDir('nerve-sqlite'), 'e.sqlite')
    // Past the 16 MB the WAL used to be cut back to at each restart.
    const restartWalBytes = 18 * 1024 * 1024
    // maxWalBytes out of reach (a WAL past it is cut back to it): any shrinking would be at a restart.
    const maxWalBytes = 1024 * 1024 * 1024
    const f = open(file, { maxWalBytes, restartWalBytes, checkpointEveryMs: 10 })
    expect(f.db.pragma('journal_size_limit', { simple: true })).toBe(maxWalBytes)
    f.db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT)')
    const insert = f.db.prepare('INSERT INTO t (n, v) VALUES (?, ?)')
    const batch = f.db.transaction((from: number) => {
      for (let n = from; n < from + 50; n++) insert.run(n, record)
    })
    // Bytes 12-15 of the WAL's header count its restarts (SQLite's checkpoint sequence number).
    const header = Buffer.alloc(16)
    const restarts = () => {
      const fd = openSync(`${file}-wal`, 'r')
      try {
        readSync(fd, header, 0, 16, 0)
      } finally {
        closeSync(fd)
      }
      return header.readUInt32BE(12)
    }
    batch(0)
    await f.sync()
    const first = restarts()
    let size = statSync(`${file}-wal`).size
    let shrank = 0
    // About 75 MB of frames written in all: the WAL restarts (every 18 MB written, or when a background
    // checkpoint happens to catch up), and its file only grows.
    let from = 50
    for (const end = from + 34_000; from < end; from += 50) {
      batch(from)
      await f.sync()
      const now = statSync(`${file}-wal`).size
      if (now < size) shrank++
      size = now
    }
    expect(restarts() - first).toBeGreaterThanOrEqual(1)
    expect(shrank).toBe(0)
    expect(f.db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: from })
  })

  it('lets one owner hold a file and names the problem for the next one', async () => {
    const file = join(tempDir('nerve-sqlite'), 'c.sqlite')
    const onLocked = () => new NerveError('BUS_UNAVAILABLE', `${file} is in use by another process.`)
    const owner = open(file, { singleOwner: { onLocked } })
    expect(() => openSqliteFile(file, { singleOwner: { onLocked } })).toThrow(
      expect.objectContaining({ code: 'BUS_UNAVAILABLE', message: expect.stringContaining('in use') }),
    )
    await owner.close()
    opened.pop()
    open(file, { singleOwner: { onLocked } })
  })

  it('gives a new file the page size asked for, and leaves the page size of an existing file as it is', async () => {
    const dir = tempDir('nerve-sqlite')
    const fill = async (f: SqliteFile) => {
      f.db.exec('CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY, v TEXT)')
      const insert = f.db.prepare('INSERT INTO t (v) VALUES (?)')
      for (let n = 0; n < 100; n++) insert.run(record)
      await f.sync()
    }
    const pageSize = (f: SqliteFile) => f.db.pragma('page_size', { simple: true })
    const count = (f: SqliteFile) => f.db.prepare('SELECT count(*) AS n FROM t').get()

    const fresh = open(join(dir, 'new.sqlite'), { pageSize: 2048 })
    expect(pageSize(fresh)).toBe(2048)
    expect(fresh.db.pragma('journal_mode', { simple: true })).toBe('wal')
    await fill(fresh)
    await fresh.close()
    opened.pop()
    const freshAgain = open(join(dir, 'new.sqlite'), { pageSize: 2048 })
    expect(pageSize(freshAgain)).toBe(2048)
    expect(count(freshAgain)).toEqual({ n: 100 })

    // A file written before (SQLite's 4 KB default) opens with its pages as they are, and is written on.
    const before = open(join(dir, 'old.sqlite'))
    expect(pageSize(before)).toBe(4096)
    await fill(before)
    await before.close()
    opened.pop()
    const after = open(join(dir, 'old.sqlite'), { pageSize: 2048 })
    expect(pageSize(after)).toBe(4096)
    await fill(after)
    expect(count(after)).toEqual({ n: 200 })
    expect(after.db.pragma('integrity_check', { simple: true })).toBe('ok')
  })
})
