// The bus contract on the embedded bus, plus what only the embedded bus has: a full disk, retention,
// offsets that survive a restart, one owner per data directory. The SIGKILL test is in
// embedded-bus-crash.test.ts.
import { rmSync } from 'node:fs'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import type { DeliveredRecord, Topic } from '../../bus/bus.ts'
import { createEmbeddedBus, type EmbeddedBus, type EmbeddedBusConfig } from '../../bus/embedded-bus.ts'
import { isNerveError, NerveError } from '../../runtime/errors.ts'
import { nextTurn } from '../../runtime/next-turn.ts'
import { gate } from '../helpers/gate.ts'
import { randomName, tempDir } from '../helpers/random-names.ts'
import { createTestRuntime, type TestRuntime } from '../helpers/test-runtime.ts'
import { waitFor } from '../helpers/wait-for.ts'
import { busContract } from './bus-contract.ts'
import { type Item, range, records, seqs, sorted } from './bus-records.ts'

busContract('embedded', async ({ partitions }) => {
  const dataDir = tempDir('nerve-bus')
  const rt = createTestRuntime()
  const open = () => createEmbeddedBus({ dataDir, partitions, retentionMs: 86_400_000, maxBatch: 500 }, rt)
  let bus = open()
  return {
    bus,
    reopen: async () => {
      await bus.close()
      bus = open()
      return bus
    },
    cleanup: async () => {
      await bus.close()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
})

describe('embedded bus', () => {
  const opened: { bus: EmbeddedBus; dataDir: string }[] = []
  afterEach(async () => {
    for (const { bus, dataDir } of opened.splice(0)) {
      await bus.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  function openBus(overrides: Partial<EmbeddedBusConfig> = {}, rt: TestRuntime = createTestRuntime()) {
    const config = { dataDir: tempDir('nerve-bus'), partitions: 1, retentionMs: 60_000, maxBatch: 10 }
    const merged = { ...config, ...overrides }
    const reopen = (more: Partial<EmbeddedBusConfig> = {}) => {
      const bus = createEmbeddedBus({ ...merged, ...more }, rt)
      opened.push({ bus, dataDir: merged.dataDir })
      return bus
    }
    return { bus: reopen(), reopen, rt, dataDir: merged.dataDir }
  }

  async function drain(bus: EmbeddedBus, topic: Topic<Item>, group: string, count: number) {
    const handled: DeliveredRecord<Item>[] = []
    const sub = await bus.subscribe<Item>(topic, group, async (batch) => {
      handled.push(...batch)
    })
    await waitFor(() => handled.length >= count, { what: `${count} records for ${group}` })
    await sub.stop()
    return handled
  }

  it('rejects a publish past a full disk with STORAGE_FULL and keeps none of it', async () => {
    const { bus, reopen, rt } = openBus({ maxBytes: 256 * 1024 })
    const topic: Topic<Item> = { name: randomName('full') }
    const kib = 'x'.repeat(1024)
    let accepted = 0
    let refusal: unknown
    expect(bus.readiness()).toEqual({ ok: true })
    while (!refusal) {
      const batch = records(20, 3, accepted).map((r) => ({ ...r, value: { ...r.value, pad: kib } }))
      refusal = await bus.publish(topic, batch).then(
        () => undefined,
        (err: unknown) => err,
      )
      if (!refusal) accepted += 20
    }
    expect(refusal).toBeInstanceOf(NerveError)
    expect(refusal).toMatchObject({ code: 'STORAGE_FULL', retriable: true })
    expect(accepted).toBeGreaterThan(0)
    expect(
      await rt.metricValue('nerve_component_errors_total', {
        component: 'embedded_bus',
        error_code: 'STORAGE_FULL',
      }),
    ).toBe(20)
    expect(rt.logs.some((l) => l.level === 'error' && l.error_code === 'STORAGE_FULL')).toBe(true)
    // Ingest answers 507 to every sender: /readyz must not say ready meanwhile.
    expect(bus.readiness()).toEqual({
      ok: false,
      detail:
        '1 write in a row failed (STORAGE_FULL, SQLITE_FULL); publishes are refused until a write succeeds',
    })

    await bus.close()
    const roomy = reopen({ maxBytes: undefined })
    await roomy.publish(topic, records(1, 3, accepted))
    const handled = await drain(roomy, topic, randomName('group'), accepted + 1)
    expect(seqs(handled)).toEqual(range(0, accepted + 1))
  })

  it('deletes only records past retention that every known group has committed', async () => {
    let clock = 1_000_000
    const rt = createTestRuntime({ now: () => clock })
    const { bus, reopen } = openBus({ retentionMs: 60_000 }, rt)
    const topic: Topic<Item> = { name: randomName('retention') }
    await bus.publish(topic, records(30))
    await drain(bus, topic, 'ahead', 30)
    let batches = 0
    const behind = await bus.subscribe<Item>(
      topic,
      'behind',
      async () => {
        batches++
        if (batches > 1) throw new Error('stuck')
      },
      { maxBatch: 10 },
    )
    await waitFor(() => batches > 1, { what: 'the stuck group' })
    await behind.stop()

    expect(await bus.sweepRetention()).toBe(0)
    clock += 61_000
    await bus.publish(topic, records(5, 5, 30))
    expect(await bus.sweepRetention()).toBe(10)
    expect(await rt.metricValue('nerve_bus_retained_records', { topic: topic.name })).toBe(25)
    expect(seqs(await drain(bus, topic, 'newcomer', 25))).toEqual(range(10, 35))

    await drain(bus, topic, 'behind', 25)
    expect(await bus.sweepRetention()).toBe(20)
    expect(seqs(await drain(bus, topic, 'latecomer', 5))).toEqual(range(30, 35))

    clock += 61_000
    await drain(bus, topic, 'ahead', 5)
    expect(await bus.sweepRetention()).toBe(5)
    await bus.close()

    const restarted = reopen()
    await restarted.publish(topic, records(1, 5, 35))
    const [fresh] = await drain(restarted, topic, 'after-restart', 1)
    expect(fresh).toMatchObject({ offset: 35, value: { seq: 35 } })
  })

  it('deletes a long backlog chunk by chunk, stopping at the first record inside retention', async () => {
    let clock = 5_000_000
    const { bus, rt } = openBus(
      { retentionMs: 60_000, maxBatch: 5_000 },
      createTestRuntime({ now: () => clock }),
    )
    const topic: Topic<Item> = { name: randomName('backlog') }
    for (let i = 0; i < 7_000; i += 1_000) await bus.publish(topic, records(1_000, 5, i))
    clock += 61_000
    for (let i = 7_000; i < 12_000; i += 1_000) await bus.publish(topic, records(1_000, 5, i))
    await drain(bus, topic, 'reader', 12_000)
    expect(await bus.sweepRetention()).toBe(7_000)
    expect(await rt.metricValue('nerve_bus_retention_deleted_records_total', { topic: topic.name })).toBe(
      7_000,
    )
    expect(seqs(await drain(bus, topic, 'newcomer', 5_000))).toEqual(range(7_000, 12_000))
  })

  it('keeps, from where it joined, the records of a group that subscribes while a sweep runs', async () => {
    let clock = 5_000_000
    const { bus } = openBus({ retentionMs: 60_000, maxBatch: 5_000 }, createTestRuntime({ now: () => clock }))
    const topic: Topic<Item> = { name: randomName('mid-sweep') }
    for (let i = 0; i < 12_000; i += 1_000) await bus.publish(topic, records(1_000, 5, i))
    await drain(bus, topic, 'reader', 12_000)
    clock += 61_000
    // The sweep deletes its first chunk (5,000 records) at once, then gives the loop a turn; a new group
    // joins meanwhile, at the first record left: the sweep must not delete what that group has not read.
    const sweeping = bus.sweepRetention()
    const handled: DeliveredRecord<Item>[] = []
    const sub = await bus.subscribe<Item>(topic, 'newcomer', async (batch) => {
      handled.push(...batch)
    })
    expect(await sweeping).toBe(5_000)
    await waitFor(() => handled.length >= 7_000, { what: 'the records left when the group joined' })
    await sub.stop()
    expect(seqs(handled)).toEqual(range(5_000, 12_000))
  })

  it('resumes each group exactly after its last commit when reopened', async () => {
    const { bus, reopen } = openBus({ partitions: 3 })
    const topic: Topic<Item> = { name: randomName('resume') }
    await bus.publish(topic, records(40, 7))
    await drain(bus, topic, 'early', 40)
    await bus.close()

    const again = reopen()
    await again.publish(topic, records(10, 7, 40))
    expect(sorted(seqs(await drain(again, topic, 'early', 10)))).toEqual(range(40, 50))
    expect(sorted(seqs(await drain(again, topic, 'new', 50)))).toEqual(range(0, 50))
  })

  it('refuses a second subscription of one group to one topic in a process', async () => {
    const { bus } = openBus()
    const topic: Topic<Item> = { name: randomName('twice') }
    const first = await bus.subscribe(topic, 'g', async () => {})
    const second = await bus.subscribe(topic, 'g', async () => {}).catch((err: unknown) => err)
    expect(isNerveError(second) && second.code).toBe('CONFIG_INVALID')
    await first.stop()
    const third = await bus.subscribe(topic, 'g', async () => {})
    await third.stop()
  })

  it('refuses to open a data directory another bus holds', () => {
    const { dataDir } = openBus()
    expect(() =>
      createEmbeddedBus({ dataDir, partitions: 1, retentionMs: 1, maxBatch: 1 }, createTestRuntime()),
    ).toThrow(
      expect.objectContaining({
        code: 'BUS_UNAVAILABLE',
        message: expect.stringContaining('another process'),
      }),
    )
  })

  it('counts received and sent records, warns on a refused batch and exports lag per group', async () => {
    const { bus, rt } = openBus({ partitions: 2 })
    const topic: Topic<Item> = { name: randomName('telemetry') }
    await bus.publish(topic, records(12, 4))
    let refused = false
    const handled: number[] = []
    const sub = await bus.subscribe<Item>(topic, 'meter', async (batch) => {
      if (!refused) {
        refused = true
        throw new NerveError('SINK_UNAVAILABLE', 'down', { retriable: true })
      }
      handled.push(...seqs(batch))
    })
    const lagOf = (group: string) =>
      rt.metricValue('nerve_bus_consumer_lag_records', { topic: topic.name, group })
    await waitFor(async () => handled.length >= 12 && (await lagOf('meter')) === 0, {
      what: 'all 12, no lag',
    })
    await sub.stop()
    const component = { component: 'embedded_bus' }
    expect(await rt.metricValue('nerve_component_received_events_total', component)).toBe(12)
    expect(await rt.metricValue('nerve_component_sent_events_total', component)).toBe(12)
    expect(
      await rt.metricValue('nerve_component_errors_total', {
        ...component,
        error_code: 'SINK_UNAVAILABLE',
        stage: 'handle',
      }),
    ).toBe(1)
    expect(rt.logs.find((l) => l.level === 'warn' && l.error_code === 'SINK_UNAVAILABLE')).toMatchObject({
      topic: topic.name,
      group: 'meter',
      attempt: 1,
    })
    await bus.publish(topic, records(3, 4, 12))
    expect(await rt.metricValue('nerve_bus_retained_records', { topic: topic.name })).toBe(15)

    let release = () => {}
    let calls = 0
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    // Every partition's first batch is held: nothing of the late group is committed yet.
    const late = await bus.subscribe<Item>(topic, 'late', () => {
      calls++
      return held
    })
    await waitFor(() => calls >= 1, { what: 'the first batch in flight' })
    expect(await lagOf('late')).toBe(15)
    release()
    await waitFor(async () => (await lagOf('late')) === 0, { what: 'the late group to catch up' })
    await late.stop()
    expect(await rt.metrics.render()).not.toContain('group="late"')
  })

  it('rejects records with no JSON form, keeping the rest of their publish out too', async () => {
    const { bus } = openBus()
    const topic: Topic<unknown> = { name: randomName('invalid') }
    const refusal = await bus
      .publish(topic, [
        { key: 'a', value: 1 },
        { key: 'b', value: undefined },
      ])
      .catch((err: unknown) => err)
    expect(isNerveError(refusal) && refusal.code).toBe('INPUT_INVALID')
    const circular: { self?: unknown } = {}
    circular.self = circular
    const thrown = await bus.publish(topic, [{ key: 'c', value: circular }]).catch((err: unknown) => err)
    expect(isNerveError(thrown) && thrown.code).toBe('INPUT_INVALID')
    await bus.publish(topic, [{ key: 'd', value: 2 }])
    const handled = await drain(bus, topic as Topic<Item>, 'g', 1)
    expect(handled.map((r) => r.value)).toEqual([2])
  })

  it("writes a record's JSON text as given when the publisher holds it, handing values to value readers", async () => {
    const { bus } = openBus()
    const topic = { name: randomName('text') } as Topic<Item>
    const value = { key: 'k', seq: 1 }
    const text = '{"key":"k","seq":1}'
    const texts: unknown[] = []
    const values: unknown[] = []
    const asText = await bus.subscribe(
      topic,
      'text',
      async (b) => void texts.push(...b.map((r) => r.value)),
      {
        encoded: true,
      },
    )
    const asValue = await bus.subscribe(
      topic,
      'value',
      async (b) => void values.push(...b.map((r) => r.value)),
    )
    // Written as given (no second serialization): the text here differs from JSON.stringify(value) in
    // spacing, which only the given text can explain.
    await bus.publish(topic, [{ key: 'k', value, text: text.replace(',', ', ') }])
    await waitFor(() => texts.length === 1 && values.length === 1, { what: 'both readers' })
    expect(texts).toEqual(['{"key":"k", "seq":1}'])
    expect(values).toEqual([value])
    await asText.stop()
    await asValue.stop()
  })

  it('writes large publishes made at once in turns of the event loop, each whole and in order', async () => {
    const { bus } = openBus()
    const topic = { name: randomName('bulk') } as Topic<Item>
    // Three 1,500-record publishes, as three large request bodies decoded together: each a write of its own.
    const order: string[] = []
    const publishes = [0, 1, 2].map((p) =>
      bus.publish(topic, records(1_500, 1, p * 1_500)).then(() => {
        order.push(`publish ${p}`)
        setImmediate(() => order.push(`turn after ${p}`))
      }),
    )
    await Promise.all(publishes)
    await new Promise((r) => setImmediate(r))
    expect(order.indexOf('turn after 0')).toBeLessThan(order.indexOf('publish 2'))
    expect(order.filter((o) => o.startsWith('publish'))).toEqual(['publish 0', 'publish 1', 'publish 2'])
    const handled = await drain(bus, topic, 'g', 4_500)
    expect(seqs(handled)).toEqual(range(0, 4_500))
  })

  it('writes a group commit in transactions of at most 512 KB, each publish whole, a turn between them', async () => {
    const { bus } = openBus()
    const topic = { name: randomName('wide') } as Topic<Item & { pad: string }>
    // Three publishes of 60 records of 6 KB (360 KB each), made at once: one group commit (one sync),
    // written as three transactions (two of them would be one under the former 1 MB bound).
    const pad = 'x'.repeat(6_000)
    const publishes = [0, 1, 2].map((p) =>
      bus.publish(
        topic,
        records(60, 1, p * 60).map((r) => ({ key: r.key, value: { ...r.value, pad } })),
      ),
    )
    // The turn on which the bus writes its first transaction (an immediate queued after its flush's): only
    // the first publish is written; the next one waits for a later turn (ahead of nextTurn()'s waiters).
    await new Promise((resolve) => setImmediate(resolve))
    const reader = new Database(bus.file, { readonly: true })
    try {
      const count = () =>
        (
          reader
            .prepare('SELECT coalesce(sum(last_offset - first_offset + 1), 0) AS n FROM segments')
            .get() as { n: number }
        ).n
      expect(count()).toBe(60)
      await Promise.all(publishes)
      expect(count()).toBe(180)
    } finally {
      reader.close()
    }
    const handled = await drain(bus, topic as unknown as Topic<Item>, 'g', 180)
    expect(seqs(handled)).toEqual(range(0, 180))
  })

  it('writes the next transaction of a group on the next turn, not behind every large body cut into parts', async () => {
    const { bus } = openBus()
    const topic = { name: randomName('busy-loop') } as Topic<Item & { pad: string }>
    const pad = 'x'.repeat(6_000)
    const reader = new Database(bus.file, { readonly: true })
    const count = () => {
      try {
        return (
          reader
            .prepare('SELECT coalesce(sum(last_offset - first_offset + 1), 0) AS n FROM segments')
            .get() as { n: number }
        ).n
      } catch {
        return 0
      }
    }
    // Fifty bodies decoded or published in parts at once, each waiting for its next turn between parts.
    let turns = 0
    let firstAt: number | undefined
    let secondAt: number | undefined
    let done = false
    const bodies = Array.from({ length: 50 }, async () => {
      while (!done) {
        await nextTurn()
        turns++
        const n = count()
        if (n >= 100 && firstAt === undefined) firstAt = turns
        if (n >= 200 && secondAt === undefined) secondAt = turns
      }
    })
    // Two publishes of 600 KB made at once: one group commit, two transactions.
    await Promise.all(
      [0, 1].map((p) =>
        bus.publish(
          topic,
          records(100, 1, p * 100).map((r) => ({ key: r.key, value: { ...r.value, pad } })),
        ),
      ),
    )
    done = true
    await Promise.all(bodies)
    reader.close()
    expect(firstAt).toBeDefined()
    expect(secondAt).toBeDefined()
    // The bus is every sender's way in (and the consumers' commits): its group commit must not wait a
    // turn for each of the fifty bodies between two of its transactions.
    expect((secondAt as number) - (firstAt as number)).toBeLessThan(5)
  })

  it('takes back the transactions of a group written before one that does not fit, and keeps none of it', async () => {
    const { bus, reopen } = openBus({ maxBytes: 2 * 1024 * 1024 })
    const topic = { name: randomName('full-group') } as Topic<Item & { pad: string }>
    const pad = 'x'.repeat(6_000)
    const publish = (p: number) =>
      bus.publish(
        topic,
        records(100, 1, p * 100).map((r) => ({ key: r.key, value: { ...r.value, pad } })),
      )
    // Five publishes of 600 KB at once: one group, its first transactions fit, a later one does not.
    const outcomes = await Promise.allSettled([0, 1, 2, 3, 4].map(publish))
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true)
    expect((outcomes[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'STORAGE_FULL' })
    await bus.close()
    const roomy = reopen({ maxBytes: undefined })
    await roomy.publish(topic, [{ key: 'agent-0', value: { key: 'agent-0', seq: 0, pad: '' } }])
    const handled = await drain(roomy, topic as unknown as Topic<Item>, randomName('group'), 1)
    expect(seqs(handled)).toEqual([0])
    expect(handled[0]?.offset).toBe(0)
    expect((handled[0]?.value as (Item & { pad: string }) | undefined)?.pad).toBe('')
    const reader = new Database(roomy.file, { readonly: true })
    expect(
      (
        reader
          .prepare('SELECT coalesce(sum(last_offset - first_offset + 1), 0) AS n FROM segments')
          .get() as { n: number }
      ).n,
    ).toBe(1)
    reader.close()
  })

  it('keeps no published value alive for a topic read only as text; a reader of values gets them from disk', async () => {
    const { bus } = openBus({ partitions: 2 })
    const topic = { name: randomName('text-only') } as Topic<Item>
    const texts: string[] = []
    // The forwarder holds its batches (commits nothing), so its records stay in memory meanwhile.
    const { held, release } = gate()
    const asText = await bus.subscribe<Item>(
      topic,
      'forwarder',
      async (batch) => {
        for (const r of batch) texts.push(r.value as unknown as string)
        await held
      },
      { encoded: true },
    )
    const published = records(20, 3)
    await bus.publish(topic, published)
    await waitFor(() => texts.length > 0, { what: 'the texts' })
    const handled: DeliveredRecord<Item>[] = []
    const asValues = await bus.subscribe<Item>(topic, 'reader', async (batch) => {
      handled.push(...batch)
    })
    await waitFor(() => handled.length === 20, { what: 'the values' })
    expect(sorted(seqs(handled))).toEqual(range(0, 20))
    for (const r of handled) {
      // Parsed from the stored text, not the object the publisher handed over (which nothing kept).
      expect(r.value).toEqual(published[r.value.seq]?.value)
      expect(r.value).not.toBe(published[r.value.seq]?.value)
    }
    // Once a reader of values is subscribed, new records are handed to it from memory again.
    const more = records(5, 3, 20)
    await bus.publish(topic, more)
    await waitFor(() => handled.length === 25, { what: 'the new values' })
    for (const r of handled.slice(20)) expect(r.value).toBe(more[r.value.seq - 20]?.value)
    release()
    await waitFor(() => texts.length === 25, { what: 'every text' })
    expect(texts.map((t) => JSON.parse(t) as Item).sort((a, b) => a.seq - b.seq)).toEqual(
      [...published, ...more].map((r) => r.value),
    )
    await asText.stop()
    await asValues.stop()
  })
})
