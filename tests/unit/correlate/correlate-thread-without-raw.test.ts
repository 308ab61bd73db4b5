// The correlate thread parses a CloudTrail event's record without its `raw` where the bus kept where it
// lies (bus/embedded-segments.ts): the same correlations as from a file of a nerve that did not keep it,
// while every other reader of the events (the sinks) still gets each record whole.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import type { Bus, DeliveredRecord } from '../../../bus/bus.ts'
import { correlationsTopic, eventsTopic } from '../../../bus/topics.ts'
import { startCorrelateThread } from '../../../correlate/correlate-thread.ts'
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import { createDecodedPublisher } from '../../../ingest/publish-decoded.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import type { Metrics } from '../../../runtime/metrics.ts'
import type { Correlation, NormalizedEvent } from '../../../schemas/types.ts'
import { openBusDataDir } from '../../helpers/bus-data-dir.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { detonation, stratusRecords, victimConfig } from './stratus-detonations.ts'

const shellAlert = readFileSync(
  join(import.meta.dirname, '../../fixtures/falco/falco-website.ndjson'),
  'utf8',
).split('\n')[9] as string
/** The Secrets Manager and SSM credential-access techniques' records. */
const records = stratusRecords(80, 115)

/** The alert 30 s before the first record, then the records, decoded and published as ingest does. */
async function ingest(bus: Bus, metrics: Metrics) {
  const decoder = createEventDecoder(victimConfig)
  const publisher = createDecodedPublisher({ maxPending: 10 }, { bus, metrics })
  const first = Math.min(...records.map((r) => Date.parse(r.eventTime as string)))
  const alert = JSON.stringify({ ...JSON.parse(shellAlert), time: new Date(first - 30_000).toISOString() })
  const limits = { maxItems: 1000, maxDepth: 64, texts: true }
  for (const [kind, body] of [
    ['falco', alert],
    ['cloudtrail', records.map((r) => JSON.stringify(r)).join('\n')],
  ] as const) {
    const decoded = decoder.decode(kind, splitJsonItems(body, limits), { receivedAt: 0, rawTexts: true })
    await publisher.publish(`${kind}_receiver`, decoded, 0)
  }
}

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

/** Ingests the detonation into a fresh bus (`keepSpans` false: as a nerve before the spans wrote it). */
async function correlateOnThread(keepSpans: boolean) {
  const dir = openBusDataDir('nerve-correlate-without-raw', { partitions: 2, maxBatch: 100 })
  const { bus, rt, config } = dir
  const sinkEvents: NormalizedEvent[] = []
  const correlations: Correlation[] = []
  const sink = await bus.subscribe(eventsTopic, 'test-sink', async (batch) => {
    sinkEvents.push(...batch.map((r) => r.value as NormalizedEvent))
  })
  const texts: string[] = []
  const forwarded = await bus.subscribe(
    eventsTopic,
    'test-forwarded',
    async (batch) => void texts.push(...batch.map((r) => r.value as unknown as string)),
    { encoded: true },
  )
  await bus.subscribe(correlationsTopic, 'test-correlations', async (batch) => {
    correlations.push(...(batch as readonly DeliveredRecord<Correlation>[]).map((r) => r.value))
  })
  const publishing: Bus = keepSpans
    ? bus
    : {
        ...bus,
        publish: (topic, rs) =>
          bus.publish(
            topic,
            rs.map(({ rawSpan: _, ...r }) => r),
          ),
      }
  await ingest(publishing, rt.metrics)
  const stage = await startCorrelateThread(config, dir.stageDeps())
  cleanups.push(async () => {
    await stage.close()
    await sink.stop()
    await forwarded.stop()
    await dir.close()
  })
  await waitFor(() => sinkEvents.length === records.length + 1, { what: 'the sink’s events' })
  const db = new Database(bus.file, { readonly: true })
  const spans = db
    .prepare<[], { n: number }>('SELECT count(*) AS n FROM segments WHERE raws IS NOT NULL')
    .get()
  db.close()
  return { sinkEvents, texts, correlations, spans: spans?.n ?? 0 }
}

describe('the correlate thread without the events’ raw', { timeout: 30_000 }, () => {
  it('makes the same correlations from records with and without spans; sinks get every raw', async () => {
    const withSpans = await correlateOnThread(true)
    const without = await correlateOnThread(false)
    expect(withSpans.spans).toBeGreaterThan(0)
    expect(without.spans).toBe(0)
    // As many as the detonation makes in process (replay).
    const expected = detonation(records, victimConfig).correlations
    expect(expected.length).toBeGreaterThan(10)
    for (const run of [withSpans, without])
      await waitFor(() => run.correlations.length >= expected.length, { what: 'the correlations' })
    expect(withSpans.correlations).toStrictEqual(without.correlations)
    expect(withSpans.correlations.map((c) => c.id).sort()).toEqual(expected.map((c) => c.id).sort())
    for (const run of [withSpans, without]) {
      const core = run.sinkEvents.filter((e) => e.side === 'core')
      expect(core.map((e) => e.raw)).toEqual(records)
      expect(run.texts.map((t) => JSON.parse(t).raw).filter((raw) => raw.eventTime)).toEqual(records)
    }
  })
})
