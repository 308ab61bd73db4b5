// The embedded bus keeps, beside a CloudTrail event's record, where its `raw` lies in the text (ingest wrote
// the text around the record's own: ingest/event-record-json.ts), so that the correlate thread can parse the
// record without it. What it reads that way is the event with raw null; every other read (and every record
// without a span: an edge event, a segment of an older nerve's file) is the whole record, and a span that no
// longer names its segment's records (trimmed by a nerve that predates them) is not used.
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { openRecordReader, parseReadRecord } from '../../../bus/embedded-record-reader.ts'
import { type AppendRow, openEmbeddedStorage } from '../../../bus/embedded-storage.ts'
import { parseStoredRecord, storedRecordJson } from '../../../bus/record-json.ts'
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import { eventRecordJson } from '../../../ingest/event-record-json.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'

const fixtures = join(import.meta.dirname, '../../fixtures')
const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8')

function decode(kind: 'falco' | 'cloudtrail', body: string) {
  const decoder = createEventDecoder({ agents: [], revoke: { self_identities: [] } })
  const items = splitJsonItems(body, { maxItems: 10_000, maxDepth: 64, texts: true })
  return decoder.decode(kind, items, { receivedAt: 0, rawTexts: true })
}

/** Real CloudTrail records (spliced around their text) and Falco alerts (serialized whole), interleaved. */
function sampleRows(): { rows: Omit<AppendRow, 'topicId' | 'offset'>[]; events: NormalizedEvent[] } {
  const core = decode('cloudtrail', fixture('cloudtrail/awsdocs-examples.ndjson'))
  const edge = decode('falco', fixture('falco/falco-website.ndjson')).events
  const rows: Omit<AppendRow, 'topicId' | 'offset'>[] = []
  const events: NormalizedEvent[] = []
  for (const [i, event] of core.events.entries()) {
    const record = eventRecordJson(event, core.rawTexts?.[i])
    if (record === undefined) throw new Error(`record ${i} was not spliced`)
    rows.push({ partition: 0, key: event.agent.id, value: record.text, rawSpan: record.rawSpan })
    events.push(event)
    const alert = edge[i % edge.length] as NormalizedEvent
    rows.push({ partition: 0, key: alert.agent.id, value: storedRecordJson(alert, 0) })
    events.push(alert)
  }
  return { rows, events }
}

/** JSON.parse of the event's whole JSON, as a string to compare member order too. */
const whole = (event: unknown) => JSON.stringify(JSON.parse(JSON.stringify(event)))
const withRawNull = (event: NormalizedEvent) =>
  event.side === 'core' ? whole({ ...event, raw: null }) : whole(event)

describe('where a record’s raw lies, kept by the embedded bus', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })

  async function storedSample(perWrite = Number.POSITIVE_INFINITY) {
    const dataDir = tempDir('nerve-raw-spans')
    dirs.push(dataDir)
    const storage = openEmbeddedStorage(dataDir)
    const topic = storage.createTopic('nerve.events.v1', 1)
    const { rows, events } = sampleRows()
    const appended = rows.map((row, offset) => ({ ...row, topicId: topic.id, offset }))
    for (let i = 0; i < appended.length; i += Math.min(perWrite, appended.length))
      storage.write(appended.slice(i, i + perWrite), [], 0)
    await storage.sync()
    return { dataDir, storage, topic, events }
  }

  it('reads a CloudTrail record without its raw, only where asked; everything else whole', async () => {
    const { storage, events } = await storedSample()
    expect(events.filter((e) => e.side === 'core').length).toBeGreaterThan(3)
    const reader = openRecordReader(storage.file)
    const bare = reader.read('nerve.events.v1', 0, 0, events.length, { withoutRaw: true })
    const full = reader.read('nerve.events.v1', 0, 0, events.length)
    reader.close()
    expect(bare.map((r) => whole(parseStoredRecord(r.value)))).toEqual(events.map(withRawNull))
    expect(full.map((r) => r.value)).toEqual(storage.read(1, 0, 0, events.length).map((r) => r.value))
    expect(full.map((r) => (parseStoredRecord(r.value) as NormalizedEvent).raw)).toEqual(
      events.map((e) => e.raw),
    )
    // A range that starts and ends inside the segment: each record's own span.
    const middle = openRecordReader(storage.file).read('nerve.events.v1', 0, 3, 8, { withoutRaw: true })
    expect(middle.map((r) => whole(parseStoredRecord(r.value)))).toEqual(events.slice(3, 8).map(withRawNull))
    await storage.close()
  })

  it('keeps the spans with their records when retention trims a segment', async () => {
    const { storage, events } = await storedSample()
    storage.deleteBelow(1, 0, 5)
    const reader = openRecordReader(storage.file)
    const rest = reader.read('nerve.events.v1', 0, 5, events.length, { withoutRaw: true })
    reader.close()
    expect(rest.map((r) => whole(parseStoredRecord(r.value)))).toEqual(events.slice(5).map(withRawNull))
    await storage.close()
  })

  it('reads whole what an older nerve wrote or trimmed', async () => {
    const { storage, events } = await storedSample(4)
    const db = new Database(storage.file)
    // A segment trimmed by a nerve that predates the spans: its records moved, its raws as they were.
    const [trimmed] = db
      .prepare<[], { last_offset: number; keys: string; vals: string }>(
        'SELECT last_offset, keys, vals FROM segments ORDER BY last_offset LIMIT 1',
      )
      .all()
    if (!trimmed) throw new Error('no segment')
    db.prepare('UPDATE segments SET first_offset = 1, keys = ?, vals = ? WHERE last_offset = ?').run(
      JSON.stringify(JSON.parse(trimmed.keys).slice(1)),
      trimmed.vals.split('\n').slice(1).join('\n'),
      trimmed.last_offset,
    )
    // A segment written before the spans: none.
    db.prepare('UPDATE segments SET raws = NULL WHERE last_offset = 7').run()
    db.close()
    const reader = openRecordReader(storage.file)
    const read = reader.read('nerve.events.v1', 0, 1, events.length, { withoutRaw: true })
    reader.close()
    const expected = events.map((event, offset) => (offset < 8 ? whole(event) : withRawNull(event)))
    expect(read.map((r) => whole(parseStoredRecord(r.value)))).toEqual(expected.slice(1))
    await storage.close()
  })

  it('reads a record whole when its span does not fit it, rather than fail its range again and again', async () => {
    const { storage, events } = await storedSample()
    const db = new Database(storage.file)
    const row = db
      .prepare<[], { last_offset: number; vals: string; raws: string }>(
        'SELECT last_offset, vals, raws FROM segments ORDER BY last_offset LIMIT 1',
      )
      .get()
    if (!row) throw new Error('no segment')
    const spans = JSON.parse(row.raws) as number[]
    const text = row.vals.split('\n')[0] as string
    const [start, end] = [spans[1] as number, spans[2] as number]
    // The first record's ends at a `}` inside raw: the text left would not parse. The third's (the next
    // CloudTrail record: an edge event between them) ends short of its raw's own `}`.
    const inner = text.lastIndexOf('}', end - 2) + 1
    expect(inner).toBeGreaterThan(start)
    db.prepare('UPDATE segments SET raws = ? WHERE last_offset = ?').run(
      JSON.stringify([
        spans[0],
        start,
        inner,
        spans[3],
        spans[4],
        spans[5],
        (spans[6] as number) - 1,
        ...spans.slice(7),
      ]),
      row.last_offset,
    )
    db.close()
    const reader = openRecordReader(storage.file)
    const read = reader.read('nerve.events.v1', 0, 0, 4, { withoutRaw: true })
    reader.close()
    expect(read.map((r) => whole(parseReadRecord(r)))).toEqual([
      whole(events[0]),
      whole(events[1]),
      whole(events[2]),
      whole(events[3]),
    ])
    await storage.close()
  })

  it('adds the column to a file without it, whose records read whole', async () => {
    const { dataDir, events, storage: first } = await storedSample()
    await first.close()
    // The same file as a nerve before the spans left it: no raws column.
    const db = new Database(first.file)
    db.exec('ALTER TABLE segments DROP COLUMN raws')
    db.close()
    const storage = openEmbeddedStorage(dataDir)
    const reader = openRecordReader(storage.file)
    const read = reader.read('nerve.events.v1', 0, 0, events.length, { withoutRaw: true })
    reader.close()
    expect(read.map((r) => whole(parseStoredRecord(r.value)))).toEqual(events.map(whole))
    await storage.close()
  })
})
