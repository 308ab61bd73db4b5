// The bus contract through bus/bus-port.ts: a stage on a worker thread sees the owner thread's embedded bus
// exactly as the embedded bus behaves (a MessageChannel stands for the thread boundary: same messages, same
// structured clone). Plus what only the port adds: a worker that dies fails its batch in flight, which the
// bus delivers again to the worker that replaces it.
import { rmSync } from 'node:fs'
import { MessageChannel } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import type { DeliveredRecord, Topic } from '../../bus/bus.ts'
import { createPortBus, servePortBus } from '../../bus/bus-port.ts'
import { createEmbeddedBus } from '../../bus/embedded-bus.ts'
import { NerveError } from '../../runtime/errors.ts'
import { randomName, tempDir } from '../helpers/random-names.ts'
import { createTestRuntime } from '../helpers/test-runtime.ts'
import { waitFor } from '../helpers/wait-for.ts'
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
