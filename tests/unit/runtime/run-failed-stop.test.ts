// `nerve run` exits 1 when its stop left something behind: before, closeAll logged a part that failed to
// close and went on, and the command exited 0, as after a clean stop (a supervisor saw nothing wrong).
import { Worker } from 'node:worker_threads'
import { afterEach, expect, it, vi } from 'vitest'
import { main } from '../../../nerve.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { waitFor } from '../../helpers/wait-for.ts'

afterEach(() => {
  vi.unstubAllEnvs()
  vi.restoreAllMocks()
})

it('nerve run exits 1 when a part fails to close at SIGTERM', async () => {
  vi.stubEnv('NERVE_DATA_DIR', tempDir('nerve-run-stop'))
  vi.stubEnv('NERVE_HTTP_HOST', '127.0.0.1')
  vi.stubEnv('NERVE_HTTP_PORT', '0')
  vi.stubEnv('NERVE_LOG_LEVEL', 'error')
  vi.stubEnv('NERVE_KAFKA_BROKERS', '')
  // Each thread ends, but saying it failed to (a worker that threw while ending).
  const terminate = Worker.prototype.terminate
  vi.spyOn(Worker.prototype, 'terminate').mockImplementation(async function (this: Worker) {
    await terminate.call(this)
    throw new Error('the thread failed to end cleanly')
  })
  const signals = ['SIGTERM', 'SIGINT'] as const
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]))
  const added = (s: (typeof signals)[number]) => process.listeners(s).filter((l) => !before.get(s)?.has(l))
  const run = main(['run'])
  await waitFor(() => added('SIGTERM').length > 0, { what: 'nerve run started', timeoutMs: 30_000 })
  process.emit('SIGTERM')
  expect(await run).toBe(1)
  // The second-signal handlers `nerve run` left: not this test process's.
  for (const s of signals) for (const l of added(s)) process.off(s, l)
})
