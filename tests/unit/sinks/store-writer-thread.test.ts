import { afterEach, describe, expect, it } from 'vitest'
import type { Correlation } from '../../../schemas/types.ts'
import { type CorrelationStore, createCorrelationStore } from '../../../sinks/correlation-store.ts'
import { parseListQuery } from '../../../sinks/store-query.ts'
import { type StoreWriterThread, startStoreWriterThread } from '../../../sinks/store-writer-thread.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { makeCorrelation } from './correlation-fixture.ts'

const open: (StoreWriterThread | CorrelationStore)[] = []
afterEach(async () => {
  for (const o of open.splice(0)) await o.close()
})

async function setup() {
  const rt = createTestRuntime()
  const dataDir = tempDir('nerve-store-writer')
  // As startSinks opens them: the reading store first (it creates the tables), then the writer thread.
  const store = createCorrelationStore({ data_dir: dataDir }, { metrics: rt.metrics })
  const writer = await startStoreWriterThread({ data_dir: dataDir }, { metrics: rt.metrics })
  open.push(writer, store)
  return { rt, store, writer }
}

const all = parseListQuery({ limit: '1000' }, ['agent'])

describe('store writer thread', () => {
  it('writes on its thread, visible to the main thread once resolved; a redelivery is stored once', async () => {
    const { rt, store, writer } = await setup()
    const incident = { ...makeCorrelation(0).incident, id: 'inc-7' }
    // Three pairs of one incident sharing one Falco alert, in one consumer batch.
    const batch = [0, 1, 2].map((n) => {
      const c = makeCorrelation(n, { incident })
      return { ...c, edge: makeCorrelation(0).edge }
    })
    expect(await writer.writeCorrelations(batch)).toMatchObject({ stored: 3, duplicates: 0 })
    expect(
      store
        .correlations(all)
        .map((c) => c.id)
        .sort(),
    ).toEqual(batch.map((c) => c.id).sort())
    expect(store.incidents(all)).toMatchObject([
      { id: 'inc-7', correlations: 3, edge_events: 1, core_events: 3 },
    ])

    expect(await writer.writeCorrelations([batch[1] as Correlation])).toMatchObject({
      stored: 0,
      duplicates: 1,
    })
    expect(store.incidents(all)).toMatchObject([{ id: 'inc-7', correlations: 3 }])
    const counter = (name: string, labels: Record<string, string> = {}) =>
      rt.metricValue(name, { component: 'correlation_store', ...labels })
    expect(await counter('nerve_component_received_events_total')).toBe(4)
    expect(await counter('nerve_component_sent_events_total')).toBe(3)
    expect(await counter('nerve_component_discarded_events_total', { reason: 'duplicate' })).toBe(1)
  })

  it('writes batches that arrive together in one go, each answered on its own; a bad one fails alone', async () => {
    const { store, writer } = await setup()
    const incident = { ...makeCorrelation(0).incident, id: 'inc-9' }
    const batches = [
      [makeCorrelation(0, { incident }), makeCorrelation(1, { incident })],
      [makeCorrelation(2)],
      [makeCorrelation(3, { incident, edge: makeCorrelation(0).edge })],
    ]
    const results = await Promise.all(batches.map((b) => writer.writeCorrelations(b)))
    expect(results.map((r) => [r.stored, r.opened.length])).toEqual([
      [2, 1],
      [1, 1],
      [1, 0],
    ])
    expect(store.incident('inc-9')?.incident).toMatchObject({
      correlations: 3,
      edge_events: 2,
      core_events: 3,
    })
    const mixed = await Promise.allSettled([
      writer.writeCorrelations([makeCorrelation(4)]),
      writer.writeCorrelations([{} as Correlation]),
      writer.writeCorrelations([makeCorrelation(5), makeCorrelation(4)]),
    ])
    expect(mixed.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(mixed[2]).toMatchObject({ value: { stored: 1, duplicates: 1 } })
  })

  it('stores a correlation handed over as the JSON text the bus carried, as it is, counted as an object', async () => {
    const { store, writer } = await setup()
    const c = makeCorrelation(7)
    const text = JSON.stringify(c)
    const first = await writer.writeCorrelations([text, makeCorrelation(8)])
    expect(first).toMatchObject({ stored: 2, duplicates: 0 })
    expect(first.opened.map((o) => o.id)).toContain(c.id)
    expect(await writer.writeCorrelations([text])).toMatchObject({ stored: 0, duplicates: 1 })
    expect(
      store
        .correlations(all)
        .map((x) => x.id)
        .sort(),
    ).toEqual([c.id, makeCorrelation(8).id].sort())
    expect(store.incident(c.incident.id)?.correlations.find((x) => x.id === c.id)).toEqual(c)
  })

  it('rejects a batch it cannot write (the bus then redelivers it), counts the error, and keeps writing', async () => {
    const { rt, writer } = await setup()
    await expect(writer.writeCorrelations([{} as Correlation])).rejects.toMatchObject({ code: 'INTERNAL' })
    expect(
      await rt.metricValue('nerve_component_errors_total', {
        component: 'correlation_store',
        error_code: 'INTERNAL',
        stage: 'write',
      }),
    ).toBe(1)
    expect(await writer.writeCorrelations([makeCorrelation(1)])).toMatchObject({ stored: 1, duplicates: 0 })
  })
})
