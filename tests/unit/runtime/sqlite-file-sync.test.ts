// sync() shares one fdatasync among the callers that arrive while one runs: counted through node:fs.
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { openSqliteFile } from '../../../runtime/sqlite-file.ts'
import { tempDir } from '../../helpers/random-names.ts'

const fdatasyncCalls = vi.hoisted(() => ({ count: 0 }))
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>()
  return {
    ...fs,
    fdatasync: (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
      fdatasyncCalls.count++
      fs.fdatasync(fd, callback)
    },
  }
})

describe('sqlite file sync', () => {
  it('covers the commits of callers that arrive during a sync with one more fdatasync, not one each', async () => {
    const file = join(tempDir('nerve-sqlite'), 'sync.sqlite')
    const f = openSqliteFile(file)
    f.db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)')
    const insert = f.db.prepare('INSERT INTO t (n) VALUES (?)')
    fdatasyncCalls.count = 0
    const syncs: Promise<void>[] = []
    for (let n = 0; n < 20; n++) {
      insert.run(n)
      syncs.push(f.sync())
    }
    await Promise.all(syncs)
    // The first caller's fdatasync, then one shared by the 19 that came while it ran.
    expect(fdatasyncCalls.count).toBe(2)
    await f.close()
    const again = openSqliteFile(file)
    expect(again.db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 20 })
    await again.close()
  })
})
