// A stop that fails part way still ends the sinks' threads and closes their files: before, a subscription
// whose stop() rejected skipped the dispatcher, the store reader and writer threads and the rejected-records
// files, and the store writer's Worker left running kept `nerve run` from exiting.
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Bus } from '../../../bus/bus.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { startSinks } from '../../../sinks/start-sinks.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { createMemoryBus } from './memory-bus.ts'

afterEach(() => {
  vi.restoreAllMocks()
})

describe('closing the sinks', () => {
  it('ends the store threads though a subscription fails to stop, and reports the failure', async () => {
    // Every thread the sinks start listens to its own exit: that is how the test knows them all.
    const threads = new Set<Worker>()
    const on = Worker.prototype.on
    vi.spyOn(Worker.prototype, 'on').mockImplementation(function (this: Worker, ...args) {
      threads.add(this)
      return on.apply(this, args)
    })
    const memory = createMemoryBus()
    const bus: Bus = {
      ...memory,
      subscribe: async (topic, group, handle, options) => {
        const sub = await memory.subscribe(topic, group, handle, options)
        return { ...sub, stop: () => Promise.reject(new Error('the coordinator is gone')) }
      },
    }
    const config = loadConfig({ env: { NERVE_DATA_DIR: tempDir('nerve-sinks-close') } })
    const rt = createTestRuntime()
    const sinks = await startSinks(config, { bus, log: rt.log, metrics: rt.metrics, now: Date.now })
    expect(threads.size).toBeGreaterThan(0)
    await expect(sinks.close()).rejects.toThrow('the coordinator is gone')
    // A thread ended has no id any more.
    expect([...threads].map((t) => t.threadId)).toEqual([...threads].map(() => -1))
  })
})
