// A read API query on a store another process broke (an operator's sqlite3, a botched migration): a 500
// INTERNAL, not a 503 telling the client to retry in 5 s, which would never help.
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { createHttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { type StoreReaderThread, startStoreReaderThread } from '../../../sinks/store-reader-thread.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { closeStores, openStore } from './store-harness.ts'

const readers: StoreReaderThread[] = []
afterEach(async () => {
  for (const r of readers.splice(0)) await r.close()
  await closeStores()
})

describe('a read API query on a store whose table is gone', () => {
  it('is answered 500 INTERNAL, with no Retry-After', async () => {
    const { store, dataDir } = openStore()
    store.writeCorrelations([makeCorrelation(1)])
    const reader = await startStoreReaderThread({ data_dir: dataDir })
    readers.push(reader)
    const other = new Database(join(dataDir, 'store.sqlite'))
    other.exec('ALTER TABLE correlations RENAME TO correlations_old')
    other.close()
    const rt = createTestRuntime()
    const server = createHttpServer(loadConfig().http, { log: rt.log, metrics: rt.metrics, ingestToken: 'x' })
    server.addRoutes(reader.routes)
    const res = await server.inject({ method: 'GET', url: '/v1/correlations' })
    expect(res.statusCode).toBe(500)
    expect(res.json()).toMatchObject({ error: { code: 'INTERNAL' } })
    expect(res.headers['retry-after']).toBeUndefined()
  }, 30_000)
})
