// The store's writer thread started on a fresh data dir with an injected clock, its first correlation
// stored: where the restart and readiness tests begin. `cleanup` collects what the test's afterEach undoes.
// The tests mock node:worker_threads with tracked-workers.ts (vi.mock must stay in the test file), so that
// storeWriterThreads() finds the writer's threads to end one as a crash would.
import { rmSync } from 'node:fs'
import { afterEach } from 'vitest'
import { startStoreWriterThread } from '../../../sinks/store-writer-thread.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { spawned } from '../../helpers/tracked-workers.ts'
import { makeCorrelation } from './correlation-fixture.ts'

export const storeWriterThreads = () => spawned.filter((s) => s.file.endsWith('store-writer.worker.mjs'))

/** What each test pushes to be undone, undone after each test in reverse order. */
export function cleanupAfterEach(): (() => Promise<void> | void)[] {
  const cleanup: (() => Promise<void> | void)[] = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })
  return cleanup
}

export async function writerOnAClock(name: string, cleanup: (() => Promise<void> | void)[]) {
  const dataDir = tempDir(name)
  cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }))
  const rt = createTestRuntime()
  const clock = { ms: 0 }
  const writer = await startStoreWriterThread(
    { data_dir: dataDir },
    { metrics: rt.metrics, log: rt.log, now: () => clock.ms },
  )
  cleanup.push(() => writer.close())
  const first = await writer.writeCorrelations([makeCorrelation(1)])
  if (first.stored !== 1) throw new Error(`The first correlation was not stored: ${JSON.stringify(first)}`)
  return { dataDir, rt, clock, writer }
}
