import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, vi } from 'vitest'
import { failedWritesForReadiness } from '../../../sinks/store-writer-health.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { cleanupAfterEach, storeWriterThreads, writerOnAClock } from './writer-on-a-clock.ts'

vi.mock('node:worker_threads', async (importOriginal) =>
  (await import('../../helpers/tracked-workers.ts')).trackWorkers(await importOriginal()),
)

const cleanup = cleanupAfterEach()

const started = () => writerOnAClock('nerve-store-readiness', cleanup)

const failedWrite = (writer: Awaited<ReturnType<typeof started>>['writer'], n: number) =>
  expect(writer.writeCorrelations([makeCorrelation(n)])).rejects.toThrow()

describe("the store's readiness", () => {
  it('fails after three writes in a row failed on a lock another connection holds, ok at the next stored', async () => {
    const { dataDir, writer } = await started()
    const holder = new Database(join(dataDir, 'store.sqlite'))
    cleanup.push(() => {
      holder.close()
    })
    holder.exec('BEGIN IMMEDIATE')

    // One or two failures are what a lock held for a moment does: the bus's redelivery stores them.
    for (let n = 2; n < 2 + failedWritesForReadiness - 1; n++) {
      await failedWrite(writer, n)
      expect(writer.readiness()).toEqual({ ok: true })
    }
    await failedWrite(writer, 9)
    expect(writer.readiness()).toEqual({
      ok: false,
      detail: '3 writes in a row failed (SQLITE_BUSY); the bus delivers them again',
    })
    // A retention sweep that fails meanwhile leaves nothing standing once the writes succeed again.
    await expect(writer.deleteBefore(Date.now())).rejects.toThrow()

    holder.exec('ROLLBACK')
    expect(await writer.writeCorrelations([makeCorrelation(9)])).toMatchObject({ stored: 1 })
    expect(writer.readiness()).toEqual({ ok: true })
  })

  it('fails while a thread that starts and dies is started again only after its back-off', async () => {
    const { dataDir, rt, clock, writer } = await started()
    const failedLines = () => rt.logs.filter((l) => l.msg.startsWith('The store writer thread failed'))
    const crash = async () => {
      const told = failedLines().length
      await storeWriterThreads().at(-1)?.worker.terminate()
      await waitFor(() => failedLines().length > told, { what: 'the death told' })
    }
    const threads = storeWriterThreads().length

    await crash()
    // The redeliveries that follow fail at once and start no thread until the back-off has passed.
    for (let n = 2; n < 2 + failedWritesForReadiness; n++) await failedWrite(writer, n)
    expect(storeWriterThreads().length).toBe(threads)
    expect(writer.readiness()).toEqual({
      ok: false,
      detail:
        '3 writes in a row failed (SINK_UNAVAILABLE); the bus delivers them again; the next write after 1 s starts the writer again',
    })

    // Started again, it dies again before a write succeeds (here the write fails on a lock another
    // connection holds): the wait doubles, the check still fails.
    const holder = new Database(join(dataDir, 'store.sqlite'))
    holder.exec('BEGIN IMMEDIATE')
    clock.ms += 1000
    await failedWrite(writer, 5)
    expect(storeWriterThreads().length).toBe(threads + 1)
    await crash()
    expect(failedLines().map((l) => l.retry_in_ms)).toEqual([1000, 2000])
    expect(writer.readiness()).toMatchObject({ ok: false })
    holder.exec('ROLLBACK')
    holder.close()

    // A write that succeeds ends the back-off and the failure.
    clock.ms += 2000
    expect(await writer.writeCorrelations([makeCorrelation(5)])).toMatchObject({ stored: 1 })
    expect(writer.readiness()).toEqual({ ok: true })
    await crash()
    expect(failedLines().at(-1)?.retry_in_ms).toBe(1000)
  })
})
