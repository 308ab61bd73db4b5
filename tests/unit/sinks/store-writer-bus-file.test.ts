// The store writer thread fed from the embedded bus's file (startSinks with busFile): the main thread sends
// it the range of each batch only, and the writer reads the correlations' texts from the file itself, so
// their text no longer crosses the main thread. Worker is wrapped to see what the main thread posts to it.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { correlationsTopic } from '../../../bus/topics.ts'
import { parseListQuery } from '../../../runtime/list-query.ts'
import { createCorrelationStore } from '../../../sinks/correlation-store.ts'
import { startSinks } from '../../../sinks/start-sinks.ts'
import { openBusDataDir } from '../../helpers/bus-data-dir.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { makeCorrelation } from './correlation-fixture.ts'

const posted = vi.hoisted(() => [] as { file: string; message: unknown }[])
vi.mock('node:worker_threads', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:worker_threads')>()
  class Tracked extends original.Worker {
    readonly file: string
    constructor(...args: ConstructorParameters<typeof original.Worker>) {
      super(...args)
      this.file = String(args[0])
    }
    override postMessage(...args: Parameters<InstanceType<typeof original.Worker>['postMessage']>) {
      posted.push({ file: this.file, message: args[0] })
      super.postMessage(...args)
    }
  }
  return { ...original, default: { ...original, Worker: Tracked }, Worker: Tracked }
})

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  posted.length = 0
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe('store writer fed from the bus file', { timeout: 30_000 }, () => {
  it('stores every correlation once while the main thread posts it their ranges only, never their text', async () => {
    const dir = openBusDataDir('nerve-store-bus-file', { partitions: 4, maxBatch: 50 })
    const { dataDir, rt, bus, config } = dir
    const sinks = await startSinks(config, {
      bus,
      busFile: bus.file,
      log: rt.log,
      metrics: rt.metrics,
      now: Date.now,
    })
    const store = createCorrelationStore({ data_dir: dataDir }, { metrics: rt.metrics })
    cleanups.push(async () => {
      await sinks.close()
      await store.close()
      await dir.close()
    })

    const correlations = Array.from({ length: 300 }, (_, i) => {
      const c = makeCorrelation(i)
      return { ...c, agent: { ...c.agent, id: `agent-${i % 7}` }, rule: { ...c.rule, revoke: false } }
    })
    for (let i = 0; i < correlations.length; i += 60) {
      await bus.publish(
        correlationsTopic,
        correlations.slice(i, i + 60).map((c) => ({ key: c.agent.id, value: c })),
      )
    }
    // A redelivered batch (as after a crash before the commit) is stored once.
    await bus.publish(correlationsTopic, [{ key: 'agent-0', value: correlations[0] }])
    const all = parseListQuery({ limit: '1000' }, ['agent'])
    await waitFor(() => store.total('correlations', all) === 300, { what: '300 correlations stored' })
    await waitFor(
      async () =>
        (await rt.metricValue('nerve_component_received_events_total', {
          component: 'correlation_store',
        })) === 301,
      { what: 'the duplicate handed over' },
    )
    expect(store.total('correlations', all)).toBe(300)

    const toWriter = posted.filter((p) => p.file.endsWith('store-writer.worker.mjs')).map((p) => p.message)
    const writes = toWriter.filter((m) => (m as { type?: string }).type === 'correlations')
    expect(writes.length).toBeGreaterThan(0)
    for (const m of writes) {
      expect(m).toMatchObject({ topic: correlationsTopic.name, range: { partition: expect.any(Number) } })
      expect(m).not.toHaveProperty('batch')
    }
    // No correlation's text (nor a piece of it) was copied into a message to the writer.
    const sent = JSON.stringify(toWriter)
    for (const c of correlations) expect(sent).not.toContain(c.id)
    expect(sent).not.toContain(correlations[0]?.edge.output)
  })
})
