// The embedded store's page size: a correlation record (about 2 KB) left half of each 4 KB page empty, since
// two never fit in one; a new store has 2 KB pages, where a record's head sits in its table page and the
// rest fills one overflow page. A store written with 4 KB pages (by the previous version) opens and is
// written on as it is.
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir } from '../../helpers/random-names.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { closeStore, closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

const pageSizeOf = (dataDir: string) => {
  const db = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
  try {
    return db.pragma('page_size', { simple: true })
  } finally {
    db.close()
  }
}

const record = (n: number) => {
  const c = makeCorrelation(n)
  return { ...c, edge: { ...c.edge, output: `${c.edge.output} ${'x'.repeat(1500)}` } }
}

describe('correlation store pages', () => {
  it('creates a new store with 2 KB pages and keeps its records whole across a reopen', async () => {
    const { store, dataDir } = openStore()
    expect(pageSizeOf(dataDir)).toBe(2048)
    const batch = Array.from({ length: 50 }, (_, n) => record(n))
    expect(JSON.stringify(batch[0]).length).toBeGreaterThan(2048)
    store.writeCorrelations(batch)
    await store.sync()
    await closeStore(store)
    const again = openStore(dataDir)
    expect(pageSizeOf(dataDir)).toBe(2048)
    const { status, body } = await again.get('/v1/correlations?limit=100')
    expect(status).toBe(200)
    expect(body.total).toBe(50)
    const seventh = batch[7] as ReturnType<typeof record>
    const stored = (body.items as ReturnType<typeof record>[]).find((c) => c.id === seventh.id)
    expect(stored?.edge.output).toBe(seventh.edge.output)
  })

  it('opens a store written with 4 KB pages as it is, and writes on', async () => {
    const dataDir = tempDir('nerve-store-pages')
    const old = new Database(join(dataDir, 'store.sqlite'))
    old.pragma('page_size = 4096')
    old.pragma('journal_mode = WAL')
    old.exec('CREATE TABLE earlier (n INTEGER)')
    old.close()
    const { store } = openStore(dataDir)
    store.writeCorrelations([record(1), record(2)])
    await store.sync()
    await closeStore(store)
    const again = openStore(dataDir)
    expect(pageSizeOf(dataDir)).toBe(4096)
    again.store.writeCorrelations([record(3)])
    await again.store.sync()
    const { body } = await again.get('/v1/correlations?limit=10')
    expect(body.total).toBe(3)
  })
})
