// A store another process holds locked (an operator's sqlite3, a backup): the bus's log line for the batch it
// could not commit names SQLite's code, as /readyz does, and counts it as the store being unavailable, not
// as nerve's own fault (INTERNAL).
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { createEmbeddedBus } from '../../../bus/embedded-bus.ts'
import { correlationsTopic } from '../../../bus/topics.ts'
import { startStoreWriterThread } from '../../../sinks/store-writer-thread.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { storeErrors } from './store-errors.ts'

const open: { close(): Promise<void> | void }[] = []
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close()
})

describe('a write to a locked store', () => {
  it('is logged and counted with SQLite code SQLITE_BUSY, and stored once the lock is let go', async () => {
    const rt = createTestRuntime()
    const dataDir = tempDir('nerve-store-locked')
    open.push({ close: () => rmSync(dataDir, { recursive: true, force: true }) })
    const bus = createEmbeddedBus({ dataDir, partitions: 1, retentionMs: 86_400_000, maxBatch: 50 }, rt)
    open.push(bus)
    const writer = await startStoreWriterThread({ data_dir: dataDir }, { metrics: rt.metrics, log: rt.log })
    open.push(writer)
    let stored = 0
    const sub = await bus.subscribe(correlationsTopic, 'store', async (batch) => {
      stored += (await writer.writeCorrelations(batch.map((r) => r.value))).stored
    })
    open.push({ close: () => sub.stop() })

    const holder = new Database(join(dataDir, 'store.sqlite'))
    holder.exec('BEGIN IMMEDIATE')
    const c = makeCorrelation(1)
    await bus.publish(correlationsTopic, [{ key: c.agent.id, value: c }])
    const notCommitted = () => rt.logs.filter((l) => l.msg.startsWith('Batch not committed'))
    await waitFor(() => notCommitted().length > 0, { what: 'the failed write logged' })
    expect(notCommitted()[0]).toMatchObject({
      level: 'warn',
      error_code: 'SINK_UNAVAILABLE',
      sqlite_code: 'SQLITE_BUSY',
    })
    const errors = (error_code: string) => storeErrors(rt, { error_code, stage: 'write' })
    expect(await errors('SINK_UNAVAILABLE')).toBeGreaterThan(0)
    expect(await errors('INTERNAL')).toBe(0)

    holder.exec('ROLLBACK')
    holder.close()
    await waitFor(() => stored === 1, { what: 'the correlation stored once the lock is let go' })
  })
})
