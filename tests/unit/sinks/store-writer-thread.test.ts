import { rmSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { createEmbeddedBus } from '../../../bus/embedded-bus.ts'
import { correlationsTopic } from '../../../bus/topics.ts'
import { parseListQuery } from '../../../runtime/list-query.ts'
import type { Correlation } from '../../../schemas/types.ts'
import { createCorrelationStore } from '../../../sinks/correlation-store.ts'
import { startStoreWriterThread } from '../../../sinks/store-writer-thread.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { threadNames, threadsNamed } from '../../helpers/thread-names.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { heldBack, makeCorrelation } from './correlation-fixture.ts'
import { storeErrors } from './store-errors.ts'

const open: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const o of open.splice(0)) await o.close()
})

async function setup(commitInterval = 0) {
  const rt = createTestRuntime()
  const dataDir = tempDir('nerve-store-writer')
  // As startSinks opens them: the reading store first (it creates the tables), then the writer thread.
  const store = createCorrelationStore({ data_dir: dataDir }, { metrics: rt.metrics })
  // The embedded bus's file, for the writes handed over as a range the writer reads from it.
  const bus = createEmbeddedBus({ dataDir, partitions: 1, retentionMs: 86_400_000, maxBatch: 500 }, rt)
  const writer = await startStoreWriterThread(
    { data_dir: dataDir, commit_interval: commitInterval },
    { metrics: rt.metrics, busFile: bus.file },
  )
  open.push(writer, store, bus, { close: async () => rmSync(dataDir, { recursive: true, force: true }) })
  // Each batch published in call order on the one partition: its offsets follow the previous batch's.
  let published = Promise.resolve({ partition: 0, from: 0, to: 0 })
  const rangeOf = (batch: readonly Correlation[]) => {
    published = published.then(async ({ to }) => {
      await bus.publish(
        correlationsTopic,
        batch.map((value) => ({ key: 'agent', value })),
      )
      return { partition: 0, from: to, to: to + batch.length }
    })
    return published
  }
  const ways = {
    'handed over': (batch: readonly Correlation[]) => writer.writeCorrelations(batch),
    'read from the bus file': async (batch: readonly Correlation[]) =>
      writer.writeCorrelationRange(correlationsTopic.name, await rangeOf(batch)),
  }
  return { rt, dataDir, store, writer, ways }
}

const ways = ['handed over', 'read from the bus file'] as const

const all = parseListQuery({ limit: '1000' }, ['agent'])

describe('store writer thread', () => {
  it.skipIf(threadNames() === undefined)(
    'runs on a thread named nerve-store (skipped without /proc)',
    async () => {
      const before = threadsNamed('nerve-store')
      const { writer } = await setup()
      // The writer's SQLite checkpointer thread, started as the writer opens its file, carries its creator's
      // name until it names itself nerve-sqlite.
      await waitFor(() => threadsNamed('nerve-store') === before + 1, {
        what: 'one thread named nerve-store',
      })
      await writer.close()
      await waitFor(() => threadsNamed('nerve-store') === before, { what: 'the writer thread gone' })
    },
  )

  it.each(ways)(
    'writes on its thread, visible to the main thread once resolved; a redelivery is stored once (%s)',
    async (way) => {
      const { rt, store, ways } = await setup()
      const write = ways[way]
      const incident = { ...makeCorrelation(0).incident, id: 'inc-7' }
      // Three pairs of one incident sharing one Falco alert, in one consumer batch.
      const batch = [0, 1, 2].map((n) => {
        const c = makeCorrelation(n, { incident })
        return { ...c, edge: makeCorrelation(0).edge }
      })
      expect(await write(batch)).toMatchObject({ stored: 3, duplicates: 0 })
      expect(
        store
          .correlations(all)
          .map((c) => c.id)
          .sort(),
      ).toEqual(batch.map((c) => c.id).sort())
      expect(store.incidents(all)).toMatchObject([
        { id: 'inc-7', correlations: 3, edge_events: 1, core_events: 3 },
      ])

      expect(await write([batch[1] as Correlation])).toMatchObject({
        stored: 0,
        duplicates: 1,
      })
      expect(store.incidents(all)).toMatchObject([{ id: 'inc-7', correlations: 3 }])
      const counter = (name: string, labels: Record<string, string> = {}) =>
        rt.metricValue(name, { component: 'correlation_store', ...labels })
      expect(await counter('nerve_component_received_events_total')).toBe(4)
      expect(await counter('nerve_component_sent_events_total')).toBe(3)
      expect(await counter('nerve_component_discarded_events_total', { reason: 'duplicate' })).toBe(1)
    },
  )

  it.each(ways)(
    'writes batches that arrive together in one go, each answered on its own; a bad one fails alone (%s)',
    async (way) => {
      const { store, ways } = await setup()
      const write = ways[way]
      const incident = { ...makeCorrelation(0).incident, id: 'inc-9' }
      const batches = [
        [makeCorrelation(0, { incident }), makeCorrelation(1, { incident })],
        [makeCorrelation(2)],
        [makeCorrelation(3, { incident, edge: makeCorrelation(0).edge })],
      ]
      const results = await Promise.all(batches.map((b) => write(b)))
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
        write([makeCorrelation(4)]),
        write([{} as Correlation]),
        write([makeCorrelation(5), makeCorrelation(4)]),
      ])
      expect(mixed.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
      expect(mixed[2]).toMatchObject({ value: { stored: 1, duplicates: 1 } })
    },
  )

  // No wall time is asserted: an interval of a minute, beyond the test's timeout, tells "at once" from "after
  // the interval", and a later message's reply tells that a write still waits.
  it.each(ways)(
    'commits an idle writer at once, and what arrives meanwhile only after commit_interval (%s)',
    async (way) => {
      const { store, writer, ways } = await setup(60_000)
      const write = ways[way]
      expect(await write([makeCorrelation(1)])).toMatchObject({ stored: 1 })
      let settled = 0
      const more = [write([makeCorrelation(2)]), write([makeCorrelation(3)])].map((p) =>
        p.finally(() => settled++),
      )
      // The writer answers messages in order: by this reply it has both batches, and holds them.
      await writer.deleteBefore(0)
      expect(settled).toBe(0)
      expect(store.correlations(all)).toHaveLength(1)
      // drain() (SIGTERM) writes them now, together, rather than a minute after the first commit.
      await writer.drain()
      expect((await Promise.all(more)).map((r) => r.stored)).toEqual([1, 1])
      expect(store.correlations(all)).toHaveLength(3)
    },
  )

  it('commits what waits once commit_interval has passed, without being asked', async () => {
    const { store, ways } = await setup(500)
    const write = ways['handed over']
    await write([makeCorrelation(1)])
    const more = await Promise.all([write([makeCorrelation(2)]), write([makeCorrelation(3)])])
    expect(more.map((r) => r.stored)).toEqual([1, 1])
    expect(store.correlations(all)).toHaveLength(3)
  })

  it('writes what waits for commit_interval when closed, before it closes', async () => {
    const { store, writer } = await setup(60_000)
    await writer.writeCorrelations([makeCorrelation(1)])
    const waiting = writer.writeCorrelations([makeCorrelation(2)])
    await writer.close()
    expect(await waiting).toMatchObject({ stored: 1 })
    expect(store.correlations(all)).toHaveLength(2)
  })

  it('keeps the longest commit_interval the config allows (24d) rather than committing at once', async () => {
    // setTimeout() turns a delay past 2^31 - 1 ms into 1 ms: the config refuses more than 24d.
    const { store, writer } = await setup(24 * 86_400_000)
    await writer.writeCorrelations([makeCorrelation(1)])
    let written = false
    const waiting = writer.writeCorrelations([makeCorrelation(2)]).then((r) => {
      written = true
      return r
    })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(written).toBe(false)
    expect(store.correlations(all)).toHaveLength(1)
    await writer.drain()
    expect(await waiting).toMatchObject({ stored: 1 })
    expect(store.correlations(all)).toHaveLength(2)
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

  it.each(ways)(
    'rejects a batch it cannot write (the bus then redelivers it), counts the error, and keeps writing (%s)',
    async (way) => {
      const { rt, ways } = await setup()
      const write = ways[way]
      await expect(write([{} as Correlation])).rejects.toMatchObject({ code: 'INTERNAL' })
      expect(await storeErrors(rt, { error_code: 'INTERNAL', stage: 'write' })).toBe(1)
      expect(await write([makeCorrelation(1)])).toMatchObject({ stored: 1, duplicates: 0 })
    },
  )

  it('rejects a range the bus file does not hold whole, so that the bus delivers it again', async () => {
    const { rt, store, writer, ways } = await setup()
    await ways['read from the bus file']([makeCorrelation(1)])
    // Offsets 1 and 2 were never written: nothing of the range is stored, the error is counted.
    await expect(
      writer.writeCorrelationRange(correlationsTopic.name, { partition: 0, from: 0, to: 3 }),
    ).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true })
    expect(await storeErrors(rt, { error_code: 'BUS_UNAVAILABLE', stage: 'write' })).toBe(1)
    expect(store.correlations(all).map((c) => c.id)).toEqual([makeCorrelation(1).id])
  })

  it('rejects a range as BUS_UNAVAILABLE when it cannot open the bus file, not as the store unavailable', async () => {
    const rt = createTestRuntime()
    const dataDir = tempDir('nerve-store-writer-no-bus')
    const writer = await startStoreWriterThread(
      { data_dir: dataDir },
      { metrics: rt.metrics, busFile: join(dataDir, 'no-such-bus.sqlite') },
    )
    open.push(writer, { close: async () => rmSync(dataDir, { recursive: true, force: true }) })
    await expect(
      writer.writeCorrelationRange(correlationsTopic.name, { partition: 0, from: 0, to: 1 }),
    ).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true, cause: { code: 'SQLITE_CANTOPEN' } })
  })

  it('rejects a write to a store another process broke (its table renamed) as INTERNAL, with SQLite code', async () => {
    const { rt, dataDir, ways } = await setup()
    const other = new Database(join(dataDir, 'store.sqlite'))
    other.exec('ALTER TABLE correlations RENAME TO correlations_old')
    other.close()
    await expect(ways['handed over']([makeCorrelation(1)])).rejects.toMatchObject({
      code: 'INTERNAL',
      cause: { code: 'SQLITE_ERROR' },
    })
    expect(await storeErrors(rt, { error_code: 'SINK_UNAVAILABLE', stage: 'write' })).toBe(0)
  })
})

describe('opening a store of an earlier version', () => {
  it('builds the revoke outcomes index it lacks once the writer is ready, and tells before and after', async () => {
    const dataDir = tempDir('nerve-store-upgrade')
    const rt = createTestRuntime()
    const earlier = createCorrelationStore({ data_dir: dataDir }, { metrics: rt.metrics })
    earlier.writeOutcomes(Array.from({ length: 50 }, (_, n) => heldBack(n)))
    await earlier.close()
    // The earlier version's store had no per-status index of outcomes.
    const db = new Database(join(dataDir, 'store.sqlite'))
    db.exec('DROP INDEX revoke_outcomes_incident_status')
    db.close()
    const built = () => rt.logs.filter((l) => l.index === 'revoke_outcomes_incident_status')
    let written = 0
    const start = async () => {
      const writer = await startStoreWriterThread({ data_dir: dataDir }, { metrics: rt.metrics, log: rt.log })
      // Ready before the build has ended: start-up (and HTTP's listen) does not wait for it.
      expect(built().filter((l) => l.duration_ms !== undefined)).toEqual([])
      // A write waits for it, and is then stored.
      expect(await writer.writeCorrelations([makeCorrelation(++written)])).toMatchObject({ stored: 1 })
      await writer.close()
      return rt.logs.splice(0).filter((l) => l.index === 'revoke_outcomes_incident_status')
    }
    const told = await start()
    expect(told.map((l) => [l.level, l.msg])).toEqual([
      ['info', expect.stringMatching(/^Building an index this version needs, once/)],
      ['info', "Built the index; the store's writes go on."],
    ])
    expect(told[0]).toMatchObject({ revoke_outcomes: 50 })
    expect(told[1]).toMatchObject({ revoke_outcomes: 50, duration_ms: expect.any(Number) })
    // Once: the next start finds it.
    expect(await start()).toEqual([])
    rmSync(dataDir, { recursive: true, force: true })
  })
})
