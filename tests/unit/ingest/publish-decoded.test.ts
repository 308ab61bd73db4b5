// The decoded publisher sends a large body's records to the bus in parts, giving the event loop back between
// them, and resolves only once every part is durable; a failing part fails the whole publish.
import { rmSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { BusRecord } from '../../../bus/bus.ts'
import { type DeadLetter, deadLetterTopic, eventsTopic } from '../../../bus/topics.ts'
import type { Decoded } from '../../../ingest/decode-events.ts'
import { createDecodedPublisher, partRecords } from '../../../ingest/publish-decoded.ts'
import { NerveError } from '../../../runtime/errors.ts'
import { parseListQuery } from '../../../runtime/list-query.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { createRejectedStore } from '../../../sinks/rejected-store.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { createMemoryBus } from './memory-bus.ts'

const events = (n: number): Decoded =>
  ({
    events: Array.from({ length: n }, (_, i) => ({ id: `e${i}`, agent: { id: `agent-${i % 7}` } })),
    invalid: [],
    skipped: {},
    internal: 0,
  }) as unknown as Decoded

function setup() {
  const bus = createMemoryBus()
  const sizes: number[] = []
  const publish = bus.publish
  bus.publish = (topic, records) => {
    sizes.push(records.length)
    return publish(topic, records)
  }
  const publisher = createDecodedPublisher({ maxPending: 10 }, { bus, metrics: createTestRuntime().metrics })
  return { bus, sizes, publisher }
}

describe('publishing a large body in parts', () => {
  it('publishes a small body in one go', async () => {
    const { bus, sizes, publisher } = setup()
    await publisher.publish('falco_receiver', events(partRecords), 0)
    expect(sizes).toEqual([partRecords])
    expect(bus.records(eventsTopic)).toHaveLength(partRecords)
  })

  it('publishes a large body in parts of at most partRecords, every record once and in order', async () => {
    const { bus, sizes, publisher } = setup()
    await publisher.publish('falco_receiver', events(2 * partRecords + 3), 0)
    expect(sizes).toEqual([partRecords, partRecords, 3])
    const ids = bus.records(eventsTopic).map((r: BusRecord<NormalizedEvent>) => r.value.id)
    expect(ids).toEqual(Array.from({ length: 2 * partRecords + 3 }, (_, i) => `e${i}`))
  })

  it('gives the event loop back between parts', async () => {
    const { sizes, publisher } = setup()
    const seen: number[] = []
    const done = publisher.publish('falco_receiver', events(3 * partRecords), 0)
    // Another request's turn, queued after the publish started: it runs before the last part is published.
    setImmediate(() => seen.push(sizes.length))
    await done
    expect(seen[0]).toBeLessThan(3)
  })

  it('fails the whole publish when a part fails, starts no part after it, and is idle once it answers', async () => {
    const { bus, sizes, publisher } = setup()
    let calls = 0
    bus.before = async () => {
      calls++
      if (calls === 2) throw new NerveError('STORAGE_FULL', 'full', { retriable: true })
    }
    const failing = publisher.publish('falco_receiver', events(5 * partRecords), 0)
    await expect(failing).rejects.toMatchObject({ code: 'STORAGE_FULL' })
    expect(sizes.length).toBeLessThan(5)
    expect(publisher.pending()).toBe(0)
  })

  it('does not answer before every part is durable', async () => {
    const { bus, publisher } = setup()
    const holds: (() => void)[] = []
    bus.before = () => new Promise<void>((resolve) => holds.push(resolve))
    let answered = false
    const done = publisher.publish('falco_receiver', events(2 * partRecords), 0).then(() => {
      answered = true
    })
    for (let i = 0; holds.length < 2 && i < 100; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(holds).toHaveLength(2)
    holds[1]?.()
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(answered).toBe(false)
    holds[0]?.()
    await done
    expect(answered).toBe(true)
  })

  it('answers a failed links sync only once every part it started has settled, and drains after them', async () => {
    const bus = createMemoryBus()
    const holds: (() => void)[] = []
    bus.before = () => new Promise<void>((resolve) => holds.push(resolve))
    const publisher = createDecodedPublisher(
      { maxPending: 10 },
      {
        bus,
        metrics: createTestRuntime().metrics,
        linksDurable: () =>
          Promise.reject(new NerveError('STORAGE_FULL', 'links file full', { retriable: true })),
      },
    )
    let answered = false
    const decoded = { ...events(2 * partRecords), links: 1 } as Decoded
    const done = publisher.publish('cloudtrail_receiver', decoded, 0).then(
      () => 'accepted',
      (err: unknown) => err,
    )
    void done.then(() => {
      answered = true
    })
    await waitFor(() => holds.length === 2, { what: 'both parts in flight' })
    // The links sync failed already; answered now, the sender's retry would race the parts still published.
    let drained = false
    void publisher.drain().then(() => {
      drained = true
    })
    await new Promise((resolve) => setImmediate(resolve))
    expect({ answered, drained, pending: publisher.pending() }).toEqual({
      answered: false,
      drained: false,
      pending: 1,
    })
    for (const release of holds.splice(0)) release()
    expect(await done).toMatchObject({ code: 'STORAGE_FULL' })
    expect(bus.records(eventsTopic)).toHaveLength(2 * partRecords)
    await waitFor(() => drained, { what: 'drain once the parts settled' })
  })

  it('puts no dead letter on the bus when a part of the events fails: the retry would store them twice', async () => {
    const { bus, publisher } = setup()
    let eventParts = 0
    bus.before = async (topic) => {
      if (topic.name !== eventsTopic.name) return
      eventParts++
      if (eventParts === 2) throw new NerveError('STORAGE_FULL', 'full', { retriable: true })
    }
    const decoded = {
      ...events(2 * partRecords + 1),
      invalid: [{ index: 0, problems: [{ path: '/rule', message: 'is required' }], original: '{}' }],
    } as unknown as Decoded
    await expect(publisher.publish('falco_receiver', decoded, 0)).rejects.toMatchObject({
      code: 'STORAGE_FULL',
    })
    // Published once the events are durable, it goes with the retry only (the rejected store would keep
    // one copy of two anyway, rejected-store.test.ts, but the bus would carry both).
    expect(bus.records(deadLetterTopic)).toHaveLength(0)
    expect(publisher.pending()).toBe(0)
    bus.before = undefined
    await publisher.publish('falco_receiver', decoded, 1)
    expect(bus.records(deadLetterTopic)).toHaveLength(1)
  })

  it('publishes many invalid items to the dead-letter topic in parts too', async () => {
    const { bus, sizes, publisher } = setup()
    const decoded = {
      events: [],
      invalid: Array.from({ length: partRecords + 1 }, (_, index) => ({
        index,
        problems: [{ path: '/rule', message: 'is required' }],
        original: '{}',
      })),
      skipped: {},
      internal: 0,
    } as unknown as Decoded
    await publisher.publish('falco_receiver', decoded, 0)
    expect(sizes).toEqual([partRecords, 1])
    expect(bus.records(deadLetterTopic)).toHaveLength(partRecords + 1)
  })

  it('stores the dead letters of a body of 300 invalid items once when a part fails and the sender retries', async () => {
    const { bus, publisher } = setup()
    const decoded = {
      events: [],
      invalid: Array.from({ length: 300 }, (_, index) => ({
        index,
        problems: [{ path: '/rule', message: 'is required' }],
        original: `{"n":${index}}`,
      })),
      skipped: {},
      internal: 0,
    } as unknown as Decoded
    // The first part of the dead letters is durable, the second fails: the sender is told to retry.
    let parts = 0
    bus.before = async () => {
      parts++
      if (parts === 2) throw new NerveError('STORAGE_FULL', 'full', { retriable: true })
    }
    await expect(publisher.publish('falco_receiver', decoded, 1_000)).rejects.toMatchObject({
      code: 'STORAGE_FULL',
    })
    bus.before = undefined
    await publisher.publish('falco_receiver', decoded, 2_000)
    expect(bus.records(deadLetterTopic).length).toBeGreaterThan(300)
    // The retry is received later: each dead letter is still stored once, at the later time.
    const dir = tempDir('nerve-rejected')
    const store = createRejectedStore({ data_dir: dir }, { metrics: createTestRuntime().metrics })
    await store.keepDeadLetters(bus.records(deadLetterTopic).map((r) => r.value as DeadLetter))
    const page = store.deadLetters(parseListQuery({ limit: '500' }, ['component', 'error_code']))
    expect(page.total).toBe(300)
    expect(new Set(page.items.map((d) => d.received_at))).toEqual(new Set([2_000]))
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
})
