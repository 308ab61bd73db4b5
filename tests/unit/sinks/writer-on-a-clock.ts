// The store's writer thread started on a fresh data dir with an injected clock, its first correlation
// stored: where the restart and readiness tests begin. `cleanup` collects what the test's afterEach undoes.
import { rmSync } from 'node:fs'
import { startStoreWriterThread } from '../../../sinks/store-writer-thread.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { makeCorrelation } from './correlation-fixture.ts'

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
