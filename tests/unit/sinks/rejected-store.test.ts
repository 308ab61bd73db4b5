// Dead letters and late events, before only readable with sqlite3 on the bus file: kept from their topics
// by the sinks and served paged on GET /v1/dead-letters and /v1/late-events, bounded against a flood.
import { afterEach, describe, expect, it } from 'vitest'
import { type DeadLetter, deadLetterTopic, type LateEvent, lateEventsTopic } from '../../../bus/topics.ts'
import { createHttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import {
  createRejectedStore,
  maxOriginalChars,
  type RejectedStore,
  rowsPerWrite,
} from '../../../sinks/rejected-store.ts'
import { type Sinks, startSinks } from '../../../sinks/start-sinks.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { edgeEvent } from '../correlate/sample-events.ts'
import { createMemoryBus } from './memory-bus.ts'

const open: (Sinks | RejectedStore)[] = []
afterEach(async () => {
  for (const s of open.splice(0)) await s.close()
})

const t0 = Date.UTC(2026, 10, 25, 16, 0, 0)

function deadLetter(n: number, overrides: Partial<DeadLetter> = {}): DeadLetter {
  return {
    component: 'falco_receiver',
    error_code: 'INPUT_INVALID',
    reason: 'Item 0 is not a Falco alert.',
    problems: [{ path: '/priority', message: 'must be equal to one of the allowed values' }],
    index: n,
    received_at: t0 + n * 1000,
    original: `{"output":"x","priority":"Loud","rule":"Terminal shell in container","n":${n}}`,
    original_encoding: 'utf8',
    ...overrides,
  }
}

function lateEvent(n: number, agent = 'default/alpine'): LateEvent {
  return {
    event: edgeEvent({ id: `late-${n}`, time: t0 + n * 1000, agent }),
    stream_time: t0 + 3_600_000,
    lag_ms: 1000,
    reason: 'edge event older than the stream time minus after and grace',
  }
}

describe('dead letters and late events', () => {
  it('are kept from their topics and served paged, filtered, with ISO times', async () => {
    const rt = createTestRuntime()
    const bus = createMemoryBus()
    const config = loadConfig({ env: { NERVE_DATA_DIR: tempDir('nerve-rejected') } })
    const sinks = await startSinks(config, { bus, log: rt.log, metrics: rt.metrics, now: Date.now })
    open.push(sinks)
    const server = createHttpServer(config.http, { log: rt.log, metrics: rt.metrics, ingestToken: 't' })
    server.addRoutes(sinks.routes)
    const get = async (url: string) => (await server.inject({ method: 'GET', url })).json()

    const letters = [0, 1, 2].map((n) => deadLetter(n))
    letters.push(deadLetter(3, { component: 'cloudtrail_receiver' }))
    await bus.publish(
      deadLetterTopic,
      [...letters, letters[0] as DeadLetter].map((value) => ({ key: '', value })),
    )
    await bus.publish(lateEventsTopic, [
      { key: 'a', value: lateEvent(1) },
      { key: 'b', value: lateEvent(2, 'etl') },
    ])
    await waitFor(async () => (await get('/v1/dead-letters')).total === 4, { what: 'four dead letters' })
    await waitFor(async () => (await get('/v1/late-events')).total === 2, { what: 'two late events' })

    const page = await get('/v1/dead-letters?component=falco_receiver&limit=2')
    expect(page).toMatchObject({ count: 2, total: 3 })
    expect(page.items[0]).toMatchObject({ index: 2, received_at_iso: new Date(t0 + 2000).toISOString() })
    const rest = await get(`/v1/dead-letters?component=falco_receiver&limit=2&cursor=${page.next}`)
    expect(rest.items.map((d: DeadLetter) => d.index)).toEqual([0])
    expect(rest.next).toBeUndefined()

    const late = await get('/v1/late-events?agent=etl')
    expect(late.items).toHaveLength(1)
    expect(late.items[0].event).toMatchObject({ id: 'late-2', time_iso: new Date(t0 + 2000).toISOString() })
    expect(late.items[0].event.raw).toBeUndefined()
    expect((await get('/v1/late-events?until=nope')).error.code).toBe('INPUT_INVALID')
  })

  it('keeps a flood bounded: originals cut to 16 KiB, only the newest rows, drops counted', async () => {
    const rt = createTestRuntime()
    const store = createRejectedStore({ data_dir: tempDir('nerve-rejected'), max_rows: 50 }, rt)
    open.push(store)
    const huge = `{"output":"${'A'.repeat(200_000)}"}`
    store.writeDeadLetters([deadLetter(0, { original: huge })])
    const [kept] = store.deadLetters({ limit: 1, text: {} }).items
    expect(kept?.original).toHaveLength(maxOriginalChars)
    expect(kept?.original_truncated).toBe(true)

    for (let batch = 0; batch < 4; batch++) {
      store.writeDeadLetters(Array.from({ length: 30 }, (_, i) => deadLetter(1 + batch * 30 + i)))
    }
    const all = store.deadLetters({ limit: 1000, text: {} })
    expect(all.total).toBe(50)
    expect(all.items[0]?.index).toBe(120)
    expect(all.items.at(-1)?.index).toBe(71)
    expect(
      await rt.metricValue('nerve_component_discarded_events_total', {
        component: 'rejected_store',
        reason: 'over_capacity',
      }),
    ).toBe(71)
  })
  it('keeps a late event whose Falco output the agent padded to megabytes to a few KiB', async () => {
    const rt = createTestRuntime()
    const store = createRejectedStore({ data_dir: tempDir('nerve-rejected') }, rt)
    open.push(store)
    const late = lateEvent(1)
    const edge = late.event.edge as NonNullable<typeof late.event.edge>
    const padding = 'A'.repeat(1_000_000)
    late.event.edge = {
      ...edge,
      output: `${edge.output} ${padding}`,
      output_fields: { ...edge.output_fields, 'proc.cmdline': `sh -c ${padding}` },
      tags: Array.from({ length: 10_000 }, (_, i) => `tag-${i}`),
    }
    store.writeLateEvents([late, lateEvent(2)])
    const [second, first] = store.lateEvents({ limit: 2, text: {} }).items
    expect(JSON.stringify(first).length).toBeLessThan(4 * maxOriginalChars)
    expect(first).toMatchObject({ event_truncated: true, event: { id: 'late-1', agent: late.event.agent } })
    expect(first?.event.edge?.output.startsWith(edge.output)).toBe(true)
    expect(first?.event.edge?.output_fields).toEqual({})
    expect(second?.event_truncated).toBeUndefined()
    expect(second?.event.edge?.output_fields).toEqual(lateEvent(2).event.edge?.output_fields)
  })

  it("stores a retried request's dead letters once, at the retry's time", async () => {
    // Falcosidekick or Firehose retries a request it got no answer for (a timeout, a 503 after the first
    // parts of its 300 invalid items were durable): the same items at the same indexes, received later.
    const rt = createTestRuntime()
    const store = createRejectedStore({ data_dir: tempDir('nerve-rejected') }, rt)
    open.push(store)
    const body = (receivedAt: number) =>
      Array.from({ length: 300 }, (_, i) => deadLetter(i, { received_at: receivedAt }))
    expect(await store.keepDeadLetters(body(t0).slice(0, 128))).toBe(128)
    expect(await store.keepDeadLetters(body(t0 + 30_000))).toBe(172)
    const all = store.deadLetters({ limit: 1000, text: {} })
    expect(all.total).toBe(300)
    expect(new Set(all.items.map((d) => d.received_at))).toEqual(new Set([t0 + 30_000]))
    expect(
      await rt.metricValue('nerve_component_discarded_events_total', {
        component: 'rejected_store',
        reason: 'duplicate',
      }),
    ).toBe(128)
    // Another item, or the same bytes at another index of a request, is another dead letter.
    const other = deadLetter(0, { received_at: t0 + 60_000, original: '{"priority":"Louder"}' })
    expect(store.writeDeadLetters([other, deadLetter(300, { original: deadLetter(0).original })])).toBe(2)
  })

  it('keeps a consumer batch in parts with a turn of the loop between them, a redelivery writing only what is missing', async () => {
    const rt = createTestRuntime()
    const store = createRejectedStore({ data_dir: tempDir('nerve-rejected') }, rt)
    open.push(store)
    const batch = Array.from({ length: 2 * rowsPerWrite + 20 }, (_, i) => lateEvent(i))
    const kept = store.keepLateEvents(batch)
    // Only the first part is written before the loop gets its turn back.
    expect(store.lateEvents({ limit: 1, text: {} }).total).toBe(rowsPerWrite)
    await new Promise((resolve) => setImmediate(resolve))
    expect(store.lateEvents({ limit: 1, text: {} }).total).toBeLessThan(batch.length)
    expect(await kept).toBe(batch.length)
    expect(store.lateEvents({ limit: 1, text: {} }).total).toBe(batch.length)
    // Redelivered (a crash before the bus committed it): nothing stored twice.
    expect(await store.keepLateEvents(batch)).toBe(0)
    const letters = Array.from({ length: rowsPerWrite + 1 }, (_, i) => deadLetter(i))
    const keptLetters = store.keepDeadLetters(letters)
    expect(store.deadLetters({ limit: 1, text: {} }).total).toBe(rowsPerWrite)
    expect(await keptLetters).toBe(letters.length)
  })
})
