// The store's writer thread started again after it died: a thread that cannot open its store is started
// again after a back-off, not by each write the bus hands over, and an index build's back-off outlives the
// thread. Worker is wrapped so that the test can find the store's writer and end it as a crash would.
import { mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { errorFieldsOf } from '../../../runtime/errors.ts'
import type { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { heldBack, makeCorrelation } from './correlation-fixture.ts'
import { hasStatusIndex, startWhileLocked } from './earlier-store.ts'
import { storeErrors } from './store-errors.ts'
import { cleanupAfterEach, storeWriterThreads, writerOnAClock } from './writer-on-a-clock.ts'

vi.mock('node:worker_threads', async (importOriginal) =>
  (await import('../../helpers/tracked-workers.ts')).trackWorkers(await importOriginal()),
)

const cleanup = cleanupAfterEach()

/** Ends the running writer thread as a crash would, and waits for its death to be told. */
async function crash(rt: ReturnType<typeof createTestRuntime>) {
  const told = rt.logs.filter((l) => l.msg.startsWith('The store writer thread failed')).length
  await storeWriterThreads().at(-1)?.worker.terminate()
  await waitFor(
    () => rt.logs.filter((l) => l.msg.startsWith('The store writer thread failed')).length > told,
    {
      what: 'the death told',
    },
  )
}

describe('a writer thread that cannot open its store', () => {
  it('is started again after a back-off, one log line a try, not by each write', async () => {
    const { dataDir, rt, clock, writer } = await writerOnAClock('nerve-store-restart', cleanup)
    expect(writer.readiness()).toEqual({ ok: true })

    // The store can no longer be opened (here: a directory where the file was), and the thread dies.
    const file = join(dataDir, 'store.sqlite')
    renameSync(file, `${file}.moved`)
    mkdirSync(file)
    await crash(rt)
    const threads = storeWriterThreads().length
    const cannotStart = () =>
      rt.logs.filter((l) => l.msg.startsWith('The store writer thread could not start'))

    // The death is the first failure of the back-off: the first write after it starts the thread, which
    // fails: told once, with why and when the next try is.
    clock.ms += 1000
    await expect(writer.writeCorrelations([makeCorrelation(2)])).rejects.toThrow()
    expect(cannotStart()).toEqual([
      expect.objectContaining({ level: 'error', sqlite_code: 'SQLITE_CANTOPEN', retry_in_ms: 2000 }),
    ])
    // /readyz says so (an optional check: degraded, the bus still takes events) until a start succeeds.
    expect(writer.readiness()).toEqual({
      ok: false,
      detail: 'could not open the store (SQLITE_CANTOPEN) in 1 try; the next write after 2 s tries again',
    })
    // The bus's redeliveries meanwhile fail at once, retriable, and start no thread.
    for (let n = 0; n < 20; n++) {
      const failed = writer.writeCorrelations([makeCorrelation(2)])
      await expect(failed).rejects.toMatchObject({ code: 'SINK_UNAVAILABLE', retriable: true })
      await expect(failed).rejects.toThrow(/started again in 2000 ms/)
    }
    expect(storeWriterThreads().length).toBe(threads + 1)

    // Once the back-off has passed, a write tries again: it fails, the wait doubles.
    clock.ms += 2000
    await expect(writer.writeCorrelations([makeCorrelation(2)])).rejects.toThrow()
    expect(storeWriterThreads().length).toBe(threads + 2)
    expect(cannotStart().map((l) => l.retry_in_ms)).toEqual([2000, 4000])

    // The store is back: the first write after the back-off starts the thread and is stored.
    rmSync(file, { recursive: true })
    renameSync(`${file}.moved`, file)
    clock.ms += 3999
    await expect(writer.writeCorrelations([makeCorrelation(2)])).rejects.toMatchObject({
      code: 'SINK_UNAVAILABLE',
    })
    clock.ms += 1
    expect(writer.readiness()).toEqual({
      ok: false,
      detail: 'could not open the store (SQLITE_CANTOPEN) in 2 tries; the next write tries again',
    })
    expect(await writer.writeCorrelations([makeCorrelation(2)])).toMatchObject({ stored: 1 })
    expect(writer.readiness()).toEqual({ ok: true })
    expect(storeWriterThreads().length).toBe(threads + 3)
    expect(cannotStart()).toHaveLength(2)
    expect(await storeErrors(rt, { stage: 'thread' })).toBe(3)
  })
})

describe('a writer thread started again on a full disk', () => {
  it('says STORAGE_FULL with SQLite code SQLITE_FULL in its log line, the write it fails, the metrics and /readyz', async () => {
    const { dataDir, rt, clock, writer } = await writerOnAClock('nerve-store-full', cleanup)
    // The disk fills while the thread is down: here the store's name points at /dev/full (ENOSPC on write).
    const file = join(dataDir, 'store.sqlite')
    renameSync(file, `${file}.moved`)
    symlinkSync('/dev/full', file)
    await crash(rt)

    clock.ms += 1000
    const failed = await writer.writeCorrelations([makeCorrelation(2)]).then(
      () => undefined,
      (err: unknown) => err,
    )
    // What the bus logs and counts for the batch (errorFieldsOf), as the thread's own line says it.
    expect(failed).toMatchObject({ code: 'STORAGE_FULL', retriable: true })
    expect(errorFieldsOf(failed)).toEqual({ error_code: 'STORAGE_FULL', sqlite_code: 'SQLITE_FULL' })
    expect(rt.logs.filter((l) => l.msg.startsWith('The store writer thread could not start'))).toEqual([
      expect.objectContaining({ level: 'error', error_code: 'STORAGE_FULL', sqlite_code: 'SQLITE_FULL' }),
    ])
    expect(writer.readiness()).toEqual({
      ok: false,
      detail: 'could not open the store (SQLITE_FULL) in 1 try; the next write after 2 s tries again',
    })
    const errors = (stage: string) => storeErrors(rt, { error_code: 'STORAGE_FULL', stage })
    expect([await errors('thread'), await errors('write')]).toEqual([1, 1])
  })
})

describe("an index build's back-off", () => {
  it('outlives the writer thread: one started again does not try the build before it has passed', async () => {
    const { dataDir, rt, clock, holder, writer, buildLines } = await startWhileLocked(cleanup)
    // A second failed build doubles its wait past the back-off of the thread's start (1 s after a death).
    clock.ms += buildLines()[1]?.retry_in_ms as number
    await expect(writer.writeOutcomes([heldBack(50)])).rejects.toThrow()
    const retry = buildLines()[3]?.retry_in_ms as number
    expect(retry).toBeGreaterThan(1000)
    holder.exec('COMMIT')
    holder.close()

    await crash(rt)
    clock.ms += 1000
    expect(await writer.writeOutcomes([heldBack(50)])).toMatchObject({ stored: 1 })
    expect(await writer.writeCorrelations([makeCorrelation(4)])).toMatchObject({ stored: 1 })
    expect(hasStatusIndex(dataDir)).toBe(false)
    expect(buildLines()).toHaveLength(4)

    clock.ms += retry - 1000
    expect(await writer.writeCorrelations([makeCorrelation(5)])).toMatchObject({ stored: 1 })
    expect(hasStatusIndex(dataDir)).toBe(true)
    expect(buildLines().map((l) => l.msg)).toEqual([
      expect.stringMatching(/^Building an index this version needs, once/),
      expect.stringMatching(/^Could not build the index/),
      expect.stringMatching(/^Retrying the build of an index this version needs/),
      expect.stringMatching(/^Could not build the index/),
      expect.stringMatching(/^Retrying the build of an index this version needs/),
      "Built the index; the store's writes go on.",
    ])
  })
})
