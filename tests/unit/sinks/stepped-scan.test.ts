// A read of the store's lists runs in steps (stepped-scan.ts): asked to stop, it ends before its next
// step, having walked no more than the steps it took. This is what lets the reader thread stop a read past
// its time limit and go on with the next one, where ending the thread left SQLite scanning to the end.
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { NerveError } from '../../../runtime/errors.ts'
import { parseListQuery } from '../../../runtime/list-query.ts'
import { createStoreReads } from '../../../sinks/store-reads.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

describe('a stepped read', () => {
  it('ends at its next step once asked to stop, and reads every step otherwise', () => {
    const { store, dataDir } = openStore()
    store.writeCorrelations(Array.from({ length: 60 }, (_, n) => makeCorrelation(n)))
    const db = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
    let steps = 0
    let stopAt = Number.POSITIVE_INFINITY
    const reads = createStoreReads(db, {
      stepRows: 5,
      checkStop: () => {
        if (++steps >= stopAt) throw new NerveError('SINK_UNAVAILABLE', 'Stopped.')
      },
    })
    // A rule no correlation has: every row is walked, 5 at a time, for the page and again for its total.
    const q = parseListQuery({ rule: 'nobody-has-this-rule' }, ['rule'])
    expect(reads.correlations(q)).toEqual([])
    expect(steps).toBe(13)
    steps = 0
    expect(reads.total('correlations', q)).toBe(0)
    expect(steps).toBe(13)

    steps = 0
    stopAt = 3
    expect(() => reads.correlations(q)).toThrow(expect.objectContaining({ code: 'SINK_UNAVAILABLE' }))
    expect(steps).toBe(3)
    db.close()
  })
})
