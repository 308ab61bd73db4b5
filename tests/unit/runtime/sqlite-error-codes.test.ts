// What a SQLite failure is called: INTERNAL wherever nerve did not map it on purpose (a constraint broken by a
// bug of ours, the correlator's own checkpoint file locked), with SQLite's code beside it on every log line;
// only the store writer's failed writes map the codes an operator can act on (errorCodeOfSqlite).
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { createSqliteCheckpointStore } from '../../../correlate/checkpoint-store.ts'
import { createCorrelator } from '../../../correlate/correlator.ts'
import { errorCodeOf, errorCodeOfSqlite, errorFieldsOf } from '../../../runtime/errors.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { storeTestConfig } from '../correlate/sample-events.ts'

const open: { close(): unknown }[] = []
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close()
})

const thrownBy = (run: () => unknown): unknown => {
  try {
    run()
  } catch (err) {
    return err
  }
  throw new Error('It did not throw.')
}

describe('a raw SQLite failure', () => {
  it('a constraint violation (a bug of ours) is INTERNAL, and its log fields keep SQLite code', () => {
    const db = new Database(':memory:')
    open.push(db)
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)')
    const err = thrownBy(() => db.exec('INSERT INTO t VALUES (1)'))
    expect(errorCodeOf(err)).toBe('INTERNAL')
    expect(errorFieldsOf(err)).toEqual({
      error_code: 'INTERNAL',
      sqlite_code: 'SQLITE_CONSTRAINT_PRIMARYKEY',
    })
  })

  it("the correlator's own checkpoint file, locked by another process, is INTERNAL, not a sink", async () => {
    const file = join(tempDir('nerve-ckpt-locked'), 'checkpoints.sqlite')
    const store = createSqliteCheckpointStore(file)
    open.push({ close: () => store.close() })
    const holder = new Database(file)
    holder.exec('BEGIN IMMEDIATE')
    open.push({
      close: () => {
        holder.exec('ROLLBACK')
        holder.close()
      },
    })
    const correlator = createCorrelator(storeTestConfig)
    const err = await store
      .save(0, { offset: 1, changes: correlator.takeChanges(), snapshot: correlator.snapshot })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(errorFieldsOf(err)).toEqual({ error_code: 'INTERNAL', sqlite_code: 'SQLITE_BUSY' })
  }, 30_000)
})

describe("a store write's SQLite code as nerve's", () => {
  it('is SINK_UNAVAILABLE or STORAGE_FULL for a lock, an I/O error or a full disk: it may pass later', () => {
    expect(
      ['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED', 'SQLITE_IOERR', 'SQLITE_IOERR_FSYNC'].map(
        errorCodeOfSqlite,
      ),
    ).toEqual(Array(5).fill('SINK_UNAVAILABLE'))
    expect(errorCodeOfSqlite('SQLITE_FULL')).toBe('STORAGE_FULL')
  })

  it('is INTERNAL for a broken constraint, a bad statement or a corrupt file: retrying does not help', () => {
    expect(
      ['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_ERROR', 'SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_MISUSE'].map(
        errorCodeOfSqlite,
      ),
    ).toEqual(Array(5).fill('INTERNAL'))
  })
})
