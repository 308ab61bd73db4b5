// The embedded bus stores a Falco alert's output once: the record read back, by every path a consumer
// takes (the values in memory, the text from disk after a restart, the text forwarded to a worker), is what
// JSON.parse makes of JSON.stringify(event), members in the same order; records stored whole read as before.
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import type { DeliveredRecord } from '../../../bus/bus.ts'
import { createEmbeddedBus } from '../../../bus/embedded-bus.ts'
import { parseStoredRecord, storedRecordJson } from '../../../bus/record-json.ts'
import { eventsTopic } from '../../../bus/topics.ts'
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'

const fixtures = join(import.meta.dirname, '../../fixtures/falco')

function decodeFalco(body: string): NormalizedEvent[] {
  const decoder = createEventDecoder({ agents: [], revoke: { self_identities: [] } })
  const items = splitJsonItems(body, { maxItems: 10_000, maxDepth: 64 })
  return decoder.decode('falco', items, { receivedAt: 2_000_000_000_000 }).events
}

const lines = readFileSync(join(fixtures, 'falco-website.ndjson'), 'utf8').trim().split('\n')
const alerts = decodeFalco(lines.join('\n'))
/** What a consumer must see: JSON.parse of the event's whole JSON, as a string to compare member order too. */
const whole = (event: unknown) => JSON.stringify(JSON.parse(JSON.stringify(event)))

describe('an edge event stored by the embedded bus', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })

  it('holds the alert output once and reads back whole, from memory, from disk and as forwarded text', async () => {
    expect(alerts).toHaveLength(lines.length)
    const dataDir = tempDir('nerve-bus')
    dirs.push(dataDir)
    const config = { dataDir, partitions: 2, retentionMs: 86_400_000, maxBatch: 500 }
    const rt = createTestRuntime()
    let bus = createEmbeddedBus(config, rt)
    const seen: DeliveredRecord<NormalizedEvent>[] = []
    const texts: DeliveredRecord<unknown>[] = []
    await bus.subscribe(eventsTopic, 'values', async (batch) => void seen.push(...batch))
    await bus.subscribe(eventsTopic, 'texts', async (batch) => void texts.push(...batch), { encoded: true })
    await bus.publish(
      eventsTopic,
      alerts.map((event) => ({ key: event.agent.id, value: event })),
    )
    await waitFor(() => seen.length === alerts.length && texts.length === alerts.length)
    await bus.close()

    const stored = new Database(bus.file, { readonly: true })
      .prepare<[], { vals: string }>('SELECT vals FROM segments')
      .all()
      .flatMap((row) => row.vals.split('\n'))
    expect(stored).toHaveLength(alerts.length)
    for (const text of stored) {
      const event = JSON.parse(text) as { raw: { output: string } }
      // The output's JSON once in the record, not in `raw` and `edge` both.
      expect(text.split(JSON.stringify(event.raw.output)).length - 1).toBe(1)
    }

    bus = createEmbeddedBus(config, rt)
    const fromDisk: DeliveredRecord<NormalizedEvent>[] = []
    await bus.subscribe(eventsTopic, 'after-restart', async (batch) => void fromDisk.push(...batch))
    await waitFor(() => fromDisk.length === alerts.length)
    await bus.close()

    const byId = (records: { value: unknown }[]) => records.map((r) => whole(r.value)).sort()
    const expected = alerts.map(whole).sort()
    expect(byId(seen)).toEqual(expected)
    expect(byId(fromDisk)).toEqual(expected)
    expect(texts.map((r) => whole(parseStoredRecord(r.value as string))).sort()).toEqual(expected)
  })

  it('reads a record stored whole (by an older nerve, or from its publisher`s text) as JSON.parse does', () => {
    for (const event of alerts) expect(whole(parseStoredRecord(JSON.stringify(event)))).toBe(whole(event))
  })

  it('stores whole what its raw alert does not hold as such', () => {
    const { output_fields: _, ...alert } = JSON.parse(lines[0] as string)
    const [event] = decodeFalco(JSON.stringify(alert))
    // No output_fields in the alert: `edge.output_fields` is an empty object of its own.
    const text = storedRecordJson(event, 0)
    expect(JSON.parse(text).edge.output_fields).toEqual({})
    expect(whole(parseStoredRecord(text))).toBe(whole(event))
    // Equal content that is not the alert's own object stays where it is.
    const copy = { ...event, edge: { ...event?.edge, output_fields: {} } }
    expect(storedRecordJson(copy, 0)).toContain('"output_fields":{}')
    expect(whole(parseStoredRecord(storedRecordJson(copy, 0)))).toBe(whole(copy))
    // Not an edge event: as JSON.stringify writes it.
    const other = { side: 'core', raw: { output: 'x' }, edge: { output: 'x' } }
    expect(storedRecordJson(other, 0)).toBe(JSON.stringify(other))
  })
})
