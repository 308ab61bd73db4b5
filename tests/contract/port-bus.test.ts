// The bus contract through bus/bus-port.ts: a stage on a worker thread sees the owner thread's embedded bus
// exactly as the embedded bus behaves (a MessageChannel stands for the thread boundary: same messages, same
// structured clone). Plus what only the port adds: a worker that dies fails its batch in flight, which the
// bus delivers again to the worker that replaces it.
import { rmSync } from 'node:fs'
import { MessageChannel } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import type { Bus, BusRecord, DeliveredRecord, Topic } from '../../bus/bus.ts'
import { createPortBus, servePortBus } from '../../bus/bus-port.ts'
import { createEmbeddedBus } from '../../bus/embedded-bus.ts'
import { correlationHead, correlationsTopic } from '../../bus/topics.ts'
import { isNerveError, NerveError } from '../../runtime/errors.ts'
import type { Correlation } from '../../schemas/types.ts'
import { randomName, tempDir } from '../helpers/random-names.ts'
import { createTestRuntime } from '../helpers/test-runtime.ts'
import { waitFor } from '../helpers/wait-for.ts'
import { makeCorrelation } from '../unit/sinks/correlation-fixture.ts'
import { busContract } from './bus-contract.ts'
import { type Item, records, seqs } from './bus-records.ts'

/** A port bus (the worker's side) over a fresh channel to a server on `owner` (the main thread's side). */
function connect(
  owner: ReturnType<typeof createEmbeddedBus>,
  partitions: number,
  options: { readFile?: boolean } = {},
) {
  const { port1, port2 } = new MessageChannel()
  const server = servePortBus(owner, port1)
  const bus = createPortBus(port2, partitions, options.readFile ? { recordsFile: owner.file } : {})
  port1.on('message', (m) => server.onMessage(m))
  port2.on('message', (m) => bus.onMessage(m))
  const close = () => {
    port1.close()
    port2.close()
  }
  return { bus, server, port1, close }
}

/** The bus contract through the port, the worker reading records from the bus's messages or its file. */
for (const [name, options] of [
  ['port to an embedded bus', {}],
  ['port to an embedded bus, records read from its file', { readFile: true }],
] as const) {
  busContract(name, async ({ partitions }) => {
    const dataDir = tempDir('nerve-port-bus')
    const rt = createTestRuntime()
    const open = () => {
      const owner = createEmbeddedBus({ dataDir, partitions, retentionMs: 86_400_000, maxBatch: 500 }, rt)
      return { owner, ...connect(owner, partitions, options) }
    }
    let current = open()
    const shut = async () => {
      await current.bus.close()
      await current.server.close()
      await current.owner.close()
      current.close()
    }
    return {
      get bus() {
        return current.bus
      },
      reopen: async () => {
        await shut()
        current = open()
        return current.bus
      },
      cleanup: async () => {
        await shut()
        rmSync(dataDir, { recursive: true, force: true })
      },
    }
  })
}

describe('port bus', () => {
  it("publishes a worker's records as their JSON text, which the owner's bus may write as is", async () => {
    const published: BusRecord<unknown>[][] = []
    const owner = {
      publish: async (_topic: Topic<unknown>, records: readonly BusRecord<unknown>[]) => {
        published.push([...records])
      },
    } as unknown as Bus
    const { port1, port2 } = new MessageChannel()
    const server = servePortBus(owner, port1)
    const bus = createPortBus(port2, 1)
    port1.on('message', (m) => server.onMessage(m))
    port2.on('message', (m) => bus.onMessage(m))
    const value = { time: 1_796_530_398_000, nested: { list: [1, 'two', null] }, flag: true }
    await bus.publish<unknown>({ name: 't' }, [
      { key: 'k', value },
      { key: 'j', value: 'text' },
    ])
    // The owner's readers of values get them parsed from that text: what any other reader of the topic sees.
    expect(published).toEqual([
      [
        { key: 'k', value, text: JSON.stringify(value) },
        { key: 'j', value: 'text', text: '"text"' },
      ],
    ])
    // A value with no JSON form is refused as the embedded bus refuses it, and nothing of its publish crosses.
    const circular: { self?: unknown } = {}
    circular.self = circular
    for (const bad of [circular, undefined, 10n]) {
      const refusal = await bus
        .publish<unknown>({ name: 't' }, [
          { key: 'a', value: 1 },
          { key: 'b', value: bad },
        ])
        .catch((err: unknown) => err)
      expect(isNerveError(refusal) && refusal.code).toBe('INPUT_INVALID')
    }
    expect(published).toHaveLength(1)
    await bus.close()
    port1.close()
    port2.close()
  })

  it("hands the revoke dispatcher a correlation's head, and the correlation whole once it reads it", async () => {
    const dataDir = tempDir('nerve-port-bus')
    const rt = createTestRuntime()
    const owner = createEmbeddedBus({ dataDir, partitions: 1, retentionMs: 86_400_000, maxBatch: 500 }, rt)
    const worker = connect(owner, 1)
    const correlations = [
      makeCorrelation(1),
      makeCorrelation(2, { incident: { id: 'inc-2', merged: ['inc-1'] } }),
      makeCorrelation(3, { score: 12 }),
    ]
    const byDispatcher: DeliveredRecord<Correlation>[] = []
    const dispatcher = await owner.subscribe(
      correlationsTopic,
      'nerve-revoke',
      async (batch) => void byDispatcher.push(...batch),
      { heads: true },
    )
    // The first record without a head (a publisher that gives none for it): it alone is parsed whole.
    await worker.bus.publish(
      correlationsTopic,
      correlations.map((c, i) => ({
        key: c.agent.id,
        value: c,
        head: i === 0 ? undefined : correlationHead(c),
      })),
    )
    await waitFor(() => byDispatcher.length === 3, { what: 'the correlations at the dispatcher' })
    // The head is the worker's, taken from each correlation; the value is the correlation, parsed on access.
    expect(byDispatcher.map((r) => r.head)).toEqual([
      undefined,
      ...correlations.slice(1).map(correlationHead),
    ])
    expect(byDispatcher.map((r) => r.value)).toEqual(correlations)

    // A second reader of values (Elasticsearch): both get the whole correlations, deep-frozen, no heads.
    const byIndexer: DeliveredRecord<Correlation>[] = []
    const indexer = await owner.subscribe(
      correlationsTopic,
      'nerve-elasticsearch-correlations',
      async (b) => {
        byIndexer.push(...b)
      },
    )
    await waitFor(() => byIndexer.length === 3, { what: 'the correlations at the indexer' })
    await worker.bus.publish(
      correlationsTopic,
      correlations.map((c) => ({ key: c.agent.id, value: c, head: correlationHead(c) })),
    )
    await waitFor(() => byIndexer.length === 6 && byDispatcher.length === 6, { what: 'the second publish' })
    for (const r of [...byDispatcher.slice(3), ...byIndexer.slice(3)]) {
      expect(r.head).toBeUndefined()
      expect(Object.isFrozen(r.value)).toBe(true)
    }
    expect(byDispatcher.slice(3).map((r) => r.value)).toEqual(correlations)
    expect(byIndexer.slice(3).map((r) => r.value)).toEqual(correlations)
    await dispatcher.stop()
    await indexer.stop()
    await worker.bus.close()
    await worker.server.close()
    await owner.close()
    worker.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('redelivers the batch a dead worker held to the worker that replaces it', async () => {
    const dataDir = tempDir('nerve-port-bus')
    const rt = createTestRuntime()
    const owner = createEmbeddedBus({ dataDir, partitions: 1, retentionMs: 86_400_000, maxBatch: 500 }, rt)
    const topic: Topic<Item> = { name: randomName('topic') }
    const group = randomName('group')
    const first = connect(owner, 1)
    const held: number[] = []
    await first.bus.subscribe(topic, group, (batch) => {
      held.push(...seqs(batch))
      return new Promise<void>(() => {}) // the worker dies before it answers
    })
    await owner.publish(topic, records(3, 1))
    await waitFor(() => held.length === 3, { what: 'the batch in flight at the first worker' })
    first.server.detach(new NerveError('INTERNAL', 'Worker thread died.'))

    const { port1, port2 } = new MessageChannel()
    first.server.attach(port1)
    port1.on('message', (m) => first.server.onMessage(m))
    const second = createPortBus(port2, 1)
    port2.on('message', (m) => second.onMessage(m))
    const handled: DeliveredRecord<Item>[] = []
    await second.subscribe(topic, group, async (batch) => {
      handled.push(...batch)
    })
    await waitFor(() => handled.length === 3, {
      what: 'the same batch at the second worker',
      timeoutMs: 10_000,
    })
    expect(seqs(handled)).toEqual(held)
    await first.server.close()
    await owner.close()
    first.close()
    port1.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it("carries a handler's commit bound across: a dead worker's records since that bound go to the next one", async () => {
    const dataDir = tempDir('nerve-port-bus')
    const rt = createTestRuntime()
    const owner = createEmbeddedBus({ dataDir, partitions: 1, retentionMs: 86_400_000, maxBatch: 500 }, rt)
    const topic: Topic<Item> = { name: randomName('topic') }
    const group = randomName('group')
    const first = connect(owner, 1, { readFile: true })
    const held: number[] = []
    await first.bus.subscribe(topic, group, (batch) => {
      held.push(...seqs(batch))
      // The first batch is handled but not durable (nothing may be committed); the worker dies in the next.
      return held.length === 3 ? Promise.resolve({ commit: 0 }) : new Promise<never>(() => {})
    })
    await owner.publish(topic, records(3, 1))
    await waitFor(() => held.length === 3, { what: 'the first batch at the first worker' })
    await owner.publish(topic, records(2, 1, 3))
    await waitFor(() => held.length === 5, { what: 'the second batch at the first worker' })
    first.server.detach(new NerveError('INTERNAL', 'Worker thread died.'))

    const { port1, port2 } = new MessageChannel()
    first.server.attach(port1)
    port1.on('message', (m) => first.server.onMessage(m))
    const second = createPortBus(port2, 1, { recordsFile: owner.file })
    port2.on('message', (m) => second.onMessage(m))
    const handled: DeliveredRecord<Item>[] = []
    await second.subscribe(topic, group, async (batch) => {
      handled.push(...batch)
    })
    await waitFor(() => handled.length === 5, {
      what: 'both batches at the second worker',
      timeoutMs: 10_000,
    })
    expect(seqs(handled)).toEqual(held)
    await second.close()
    await first.server.close()
    await owner.close()
    first.close()
    port1.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
})
