// The correlate stage on its worker thread (correlate/correlate-thread.ts): what the main thread does when
// the worker dies. Worker is wrapped so the test can find the correlate worker and end it as a crash would.
import { mkdirSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import type { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { eventsTopic } from '../../../bus/topics.ts'
import { startCorrelateThread } from '../../../correlate/correlate-thread.ts'
import { openBusDataDir } from '../../helpers/bus-data-dir.ts'
import { threadNames, threadsNamed } from '../../helpers/thread-names.ts'
import { intercept, spawned } from '../../helpers/tracked-workers.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { edgeEvent } from './sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)

vi.mock('node:worker_threads', async (importOriginal) =>
  (await import('../../helpers/tracked-workers.ts')).trackWorkers(await importOriginal()),
)

const correlateWorkers = () => spawned.filter((s) => s.file.endsWith('correlate.worker.mjs'))
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  intercept.take = () => false
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

async function start(closeTimeoutMs?: number) {
  const dir = openBusDataDir('nerve-correlate-thread', { partitions: 2, maxBatch: 100 })
  const { dataDir, rt, bus, config } = dir
  const stage = await startCorrelateThread(config, { ...dir.stageDeps(), closeTimeoutMs })
  cleanups.push(async () => {
    await stage.close()
    await dir.close()
  })
  return { dataDir, rt, bus, stage }
}

describe('startCorrelateThread', { timeout: 30_000 }, () => {
  it('says why a replacement worker cannot start', async () => {
    const { dataDir, rt } = await start()
    // The checkpoints can no longer be opened (here: a directory where the file was).
    const file = join(dataDir, 'correlate-checkpoints.sqlite')
    renameSync(file, `${file}.moved`)
    mkdirSync(file)
    const first = correlateWorkers().at(-1)?.worker as Worker
    await first.terminate()
    await waitFor(() => correlateWorkers().length >= 3, { what: 'two replacements', timeoutMs: 20_000 })
    const reason = rt.logs.find((l) => JSON.stringify(l).includes('Cannot open correlator checkpoints'))
    expect(reason, JSON.stringify(rt.logs.filter((l) => l.level !== 'debug'))).toBeDefined()
    // A worker that keeps failing is retried less and less often, not every second for good.
    await waitFor(() => correlateWorkers().length >= 4, { what: 'three replacements', timeoutMs: 20_000 })
    const delays = rt.logs
      .filter((l) => l.msg.startsWith('Correlator thread stopped'))
      .map((l) => l.retry_in_ms)
    expect(delays.length).toBeGreaterThanOrEqual(3)
    expect(delays[2]).toBeGreaterThan(delays[1] as number)
  })

  it('finishes closing when the worker dies while it closes, with a batch in flight', async () => {
    const { bus, stage } = await start()
    const worker = correlateWorkers().at(-1)?.worker as Worker
    let held = 0
    intercept.take = (to, message) => {
      if (to !== worker) return false
      const m = message as { t?: string; kind?: string }
      if (m.t === 'deliver' || m.t === 'deliverRange')
        held++ // never reaches the worker: in flight until the worker is gone
      else if (m.kind === 'close')
        void worker.terminate() // dies while closing
      else return false
      return true
    }
    await bus.publish(eventsTopic, [{ key: 'data-cleaner', value: edgeEvent({ id: 'e1', time: T0 }) }])
    await waitFor(() => held > 0, { what: 'a batch in flight' })
    const closed = stage.close().then(() => 'closed')
    const late = new Promise((resolve) => setTimeout(() => resolve('still closing after 5 s'), 5_000).unref())
    expect(await Promise.race([closed, late])).toBe('closed')
  })

  it('ends a worker that does not stop in time (stuck in a loop), and finishes closing', async () => {
    const { bus, rt, stage } = await start(1_000)
    const worker = correlateWorkers().at(-1)?.worker as Worker
    let held = 0
    // The worker answers nothing any more: neither its batch in flight nor the close.
    intercept.take = (to, message) => {
      if (to !== worker) return false
      const m = message as { t?: string; kind?: string }
      if (m.t === 'deliver' || m.t === 'deliverRange') held++
      else if (m.kind !== 'close') return false
      return true
    }
    await bus.publish(eventsTopic, [{ key: 'data-cleaner', value: edgeEvent({ id: 'e1', time: T0 }) }])
    await waitFor(() => held > 0, { what: 'a batch in flight' })
    await stage.close()
    expect(rt.logs.map((l) => l.msg)).toContain('The correlator thread did not stop in time; ending it.')
  })

  it.skipIf(threadNames() === undefined)(
    // Last: the workers it starts count in `spawned`, which the tests above count from.
    'runs on a thread named nerve-correlate, the bus file checkpointed by one named nerve-sqlite (skipped without /proc)',
    async () => {
      const { bus } = await start()
      expect(threadsNamed('nerve-correlate')).toBeGreaterThanOrEqual(1)
      // The bus's checkpointer thread starts with its first commit.
      await bus.publish(eventsTopic, [{ key: 'agent-1', value: edgeEvent({ agent: 'agent-1', time: T0 }) }])
      await waitFor(() => threadsNamed('nerve-sqlite') >= 1, { what: 'the checkpointer thread named' })
    },
  )
})
