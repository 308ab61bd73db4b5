// An event's bus record is written around its raw item's own text instead of serializing `raw` again; the
// record must stay one JSON value that JSON.parse turns into exactly what it makes of JSON.stringify(event):
// the same members, in the same order, the same numbers (-0 and Infinity included), the same strings.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { eventsTopic } from '../../../bus/topics.ts'
import { createEventDecoder, type Decoded } from '../../../ingest/decode-events.ts'
import { decodeInParts } from '../../../ingest/decode-in-parts.ts'
import { eventRecordJson } from '../../../ingest/event-record-json.ts'
import { createDecodedPublisher } from '../../../ingest/publish-decoded.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { createMemoryBus } from './memory-bus.ts'

const fixtures = join(import.meta.dirname, '../../fixtures')
const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8')
const limits = { maxItems: 10_000, maxDepth: 64 }

function decode(kind: 'falco' | 'cloudtrail', body: string): Decoded {
  const decoder = createEventDecoder({ agents: [], revoke: { self_identities: [] } })
  return decoder.decode(kind, splitForTest(body), { receivedAt: 0, rawTexts: true })
}

async function decodeBody(kind: 'falco' | 'cloudtrail', body: string): Promise<Decoded> {
  const decoder = createEventDecoder({ agents: [], revoke: { self_identities: [] } })
  return decodeInParts(decoder, kind, body, limits, { receivedAt: 0, rawTexts: true }, async () => {})
}

// decode() over splitJsonItems, as decodeInParts does for a body under its part size.
const splitForTest = (body: string) => splitJsonItems(body, limits)

/** The record as the bus writes it (the spliced text, else JSON.stringify), checked against the event. */
function expectSameRecord(event: NormalizedEvent, rawText: string | undefined): string | undefined {
  const record = eventRecordJson(event, rawText)
  if (record === undefined) return undefined
  const expected = JSON.parse(JSON.stringify(event))
  const parsed = JSON.parse(record)
  expect(parsed).toStrictEqual(expected)
  // Same members in the same order, all the way down.
  expect(JSON.stringify(parsed)).toBe(JSON.stringify(event))
  expect(record).not.toContain('\n')
  return record
}

const falcoFiles = [
  'falco/falco-website.ndjson',
  'falco/falco.ndjson',
  'falco/falcosecurity-plugins.ndjson',
  'falco/falcosidekick.ndjson',
  'falco/falco-website.variants.ndjson',
]
const cloudTrailFiles = [
  'cloudtrail/aws-iam-docs-current-oidc-example.ndjson',
  'cloudtrail/aws-samples-eks-pod-identity.ndjson',
  'cloudtrail/awsdocs-examples.ndjson',
  'cloudtrail/awsdocs-marketplace-eks-irsa-examples.ndjson',
  'cloudtrail/panther-analysis-rule-tests.ndjson',
  'cloudtrail/stratus-red-team-detonation-logs.ndjson',
]

describe('an event record around its raw text', () => {
  it.each(falcoFiles)(
    'writes every event of %s around its line, parsed back as JSON.stringify gives it',
    async (file) => {
      const decoded = await decodeBody('falco', fixture(file))
      expect(decoded.events.length).toBeGreaterThan(0)
      decoded.events.forEach((event, i) => {
        const text = decoded.rawTexts?.[i]
        expect(text).toBeDefined()
        expect(expectSameRecord(event, text)).toContain(text)
      })
    },
  )

  it.each(cloudTrailFiles)(
    'writes every record of %s around its line, parsed back as JSON.stringify gives it',
    async (file) => {
      const decoded = await decodeBody('cloudtrail', fixture(file))
      expect(decoded.events.length).toBeGreaterThan(0)
      decoded.events.forEach((event, i) => {
        const text = decoded.rawTexts?.[i]
        expect(text).toBeDefined()
        expect(expectSameRecord(event, text)).toContain(text)
      })
    },
  )

  it('has no text for records inside an envelope (log file, EventBridge): the bus serializes those', () => {
    for (const file of [
      'cloudtrail/envelopes/s3-log-file-awsdocs-example.json',
      'cloudtrail/envelopes/eventbridge-aws-api-call-via-cloudtrail-awsdocs.json',
    ]) {
      const decoded = decode('cloudtrail', fixture(file))
      expect(decoded.events.length).toBeGreaterThan(0)
      expect(decoded.rawTexts).toEqual(decoded.events.map(() => undefined))
    }
  })

  it('keeps no texts unless asked (replay holds its drafts)', () => {
    const decoder = createEventDecoder({ agents: [], revoke: { self_identities: [] } })
    const body = fixture('falco/falco.ndjson')
    expect(decoder.decode('falco', splitForTest(body), { receivedAt: 0 }).rawTexts).toBeUndefined()
    expect(decoder.normalize('falco', splitForTest(body), { receivedAt: 0 }).rawTexts).toBeUndefined()
  })

  it('keeps each text beside its event across the parts of a large body, invalid lines between them', async () => {
    const lines = fixture('falco/falco.ndjson').trim().split('\n')
    const body: string[] = []
    for (let i = 0; body.join('\n').length < 200_000; i++) {
      const alert = JSON.parse(lines[i % lines.length] as string)
      alert.output = `${alert.output} #${i}`
      body.push(i % 7 === 3 ? '{"broken":' : JSON.stringify(alert))
    }
    const decoded = await decodeBody('falco', body.join('\n'))
    expect(decoded.invalid.length).toBeGreaterThan(0)
    expect(decoded.rawTexts).toHaveLength(decoded.events.length)
    decoded.events.forEach((event, i) => {
      expect(JSON.parse(decoded.rawTexts?.[i] as string)).toStrictEqual(event.raw)
      expectSameRecord(event, decoded.rawTexts?.[i])
    })
  })
})

const alert = (fields: string, extra = '') =>
  `{"time":"2024-01-01T00:00:00.123456789Z","rule":"Unexpected outbound connection","priority":"Warning",` +
  `"output":"x"${extra},"output_fields":{${fields}}}`

const ctRecord = (parameters: string) =>
  '{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"iam.amazonaws.com",' +
  '"eventName":"AttachRolePolicy","eventID":"e-1","userIdentity":{"type":"AssumedRole",' +
  `"arn":"arn:aws:sts::123456789012:assumed-role/r/s","raw":null},"requestParameters":${parameters}}`

describe('crafted items', () => {
  const cases: [string, string][] = [
    [
      'duplicate keys (the last wins, at the first key’s place)',
      alert('"a":1,"b":2,"a":3', ',"rule":"Other rule"'),
    ],
    ['an own __proto__ key', alert('"__proto__":{"polluted":true},"x":"y"')],
    ['unicode escapes', alert('"u":"\\u0041\\u00e9\\u4e2d\\ud83d\\ude00","e":"\\"\\\\\\/\\b\\f\\n\\r\\t"')],
    ['an escaped lone surrogate', alert('"s":"\\ud800 and \\udc00"')],
    [
      'whitespace (spaces, tabs, carriage returns)',
      ` {\t"time" : "2024-01-01T00:00:00Z" ,\r "rule":"r", "priority" : "Warning" , "output_fields" : { "a" :\t1 } }  `,
    ],
    [
      'integers beyond 2^53 (quoted by the exact parse)',
      alert('"evt.time":1704067200123456789,"n":-9007199254740993,"ok":9007199254740991'),
    ],
    ['a key raw with null in the output fields', alert('"raw":null,"a\\"raw":null,"s":"\\"raw\\":null"')],
    ['numbers that read back the same', alert('"f":1.5,"e":1E2,"g":0.1e1,"z":0,"n":-1.25e-5,"big":1.7e308')],
    ['nesting at the depth limit', alert(`"deep":${'['.repeat(60)}1${']'.repeat(60)}`)],
    ['non-ASCII text', alert('"cmd":"café ☕ 𝄞 \u00a0"')],
  ]

  it.each(cases)('%s: the record parses to what JSON.stringify(event) does', async (_, text) => {
    const decoded = await decodeBody('falco', text)
    expect(decoded.invalid).toEqual([])
    expect(decoded.events).toHaveLength(1)
    const record = expectSameRecord(decoded.events[0] as NormalizedEvent, decoded.rawTexts?.[0])
    expect(record).toBeDefined()
  })

  it('a key named raw in the output fields is not taken for the event’s raw', async () => {
    const decoded = await decodeBody('falco', alert('"raw":null'))
    const record = JSON.parse(
      eventRecordJson(decoded.events[0] as NormalizedEvent, decoded.rawTexts?.[0]) as string,
    )
    expect(record.raw.output_fields).toEqual({ raw: null })
    expect(record.edge.output_fields).toEqual({ raw: null })
  })

  it('gives up on an edge event whose raw comes after an object opens (keys from the input could say raw)', () => {
    const event = {
      id: 'e',
      edge: { output_fields: { raw: null } },
      raw: { rule: 'r' },
      agent: { id: 'a' },
    } as unknown as NormalizedEvent
    expect(eventRecordJson(event, '{"rule":"r"}')).toBeUndefined()
  })

  it('finds raw’s own member past strings that hold its name', () => {
    const event = {
      time_original: '"raw":null w":null',
      via: 'raw":null',
      raw: { rule: 'r' },
      side: 'core',
    } as unknown as NormalizedEvent
    const record = eventRecordJson(event, '{"rule":"r"}') as string
    expect(JSON.parse(record)).toStrictEqual(event)
    expect(JSON.stringify(JSON.parse(record))).toBe(JSON.stringify(event))
  })

  const serializedWhole: [string, string][] = [
    ['-0', alert('"z":-0')],
    ['-0.0 in an array', alert('"z":[1,-0.0]')],
    ['a negative number that underflows to -0', alert('"tiny":-1e-400')],
    ['a pretty-printed body (newlines)', JSON.stringify(JSON.parse(alert('"a":1')), null, 2)],
  ]

  it.each(serializedWhole)('%s: serialized whole (the text would read back otherwise)', async (_, text) => {
    const decoded = await decodeBody('falco', text)
    expect(decoded.events).toHaveLength(1)
    expect(decoded.rawTexts?.[0]).toBeDefined()
    expect(eventRecordJson(decoded.events[0] as NormalizedEvent, decoded.rawTexts?.[0])).toBeUndefined()
  })

  // Falco's schema refuses an output field of Infinity; a CloudTrail record's parameters are not checked.
  it.each([
    ['a number past 1.8e308', '1e400'],
    ['a negative number past it', '-2E+999'],
  ])('%s: serialized whole', async (_, number) => {
    const decoded = await decodeBody('cloudtrail', ctRecord(`{"n":${number}}`))
    expect(decoded.events).toHaveLength(1)
    expect(decoded.rawTexts?.[0]).toBeDefined()
    expect(eventRecordJson(decoded.events[0] as NormalizedEvent, decoded.rawTexts?.[0])).toBeUndefined()
  })

  it('a raw lone surrogate in the text: serialized whole (JSON.stringify escapes it; SQLite would not keep it)', () => {
    const text = alert('"s":"\ud800"')
    const decoded = decode('falco', text)
    expect(decoded.events).toHaveLength(1)
    expect(eventRecordJson(decoded.events[0] as NormalizedEvent, decoded.rawTexts?.[0])).toBeUndefined()
  })

  it('a CloudTrail record on its own is written around its text too', async () => {
    const record = ctRecord('{"raw":null,"n":1e2,"m":[-0.5,1.0]}')
    const decoded = await decodeBody('cloudtrail', record)
    expect(expectSameRecord(decoded.events[0] as NormalizedEvent, decoded.rawTexts?.[0])).toContain(record)
  })
})

describe('the decoded publisher', () => {
  it('hands the bus each event with its record text; events without a raw text go without', async () => {
    const bus = createMemoryBus()
    const publisher = createDecodedPublisher(
      { maxPending: 10 },
      { bus, metrics: createTestRuntime().metrics },
    )
    const decoded = await decodeBody('falco', `${alert('"a":1')}\n${alert('"z":-0')}`)
    expect(decoded.events).toHaveLength(2)
    await publisher.publish('falco_receiver', decoded, 0)
    const [spliced, whole] = bus.records(eventsTopic)
    expect(spliced?.text).toBe(eventRecordJson(decoded.events[0] as NormalizedEvent, decoded.rawTexts?.[0]))
    expect(spliced?.text).toContain(decoded.rawTexts?.[0])
    expect(whole?.text).toBeUndefined()
    expect(whole?.value).toBe(decoded.events[1])
  })
})
