// A core event's bus record is written around its raw item's own text instead of serializing `raw` again;
// the record must stay one JSON value that JSON.parse turns into exactly what it makes of JSON.stringify(event):
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
import { auth, fixture as fixtureBuffer, startHarness } from './ingest-harness.ts'
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
const splitForTest = (body: string) => splitJsonItems(body, { ...limits, texts: true })

/**
 * The record as the bus writes it (the spliced text, else JSON.stringify), checked against the event, and
 * its span against the raw text: the text with null there is the event without its raw.
 */
function expectSameRecord(event: NormalizedEvent, rawText: string | undefined): string | undefined {
  const record = eventRecordJson(event, rawText)
  if (record === undefined) return undefined
  const { text, rawSpan } = record
  const expected = JSON.parse(JSON.stringify(event))
  const parsed = JSON.parse(text)
  expect(parsed).toStrictEqual(expected)
  // Same members in the same order, all the way down.
  expect(JSON.stringify(parsed)).toBe(JSON.stringify(event))
  expect(text).not.toContain('\n')
  expect(text.slice(rawSpan.start, rawSpan.end)).toBe(rawText)
  const withoutRaw = `${text.slice(0, rawSpan.start)}null${text.slice(rawSpan.end)}`
  expect(JSON.stringify(JSON.parse(withoutRaw))).toBe(JSON.stringify({ ...event, raw: null }))
  return text
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
    '%s: edge events are serialized whole; core events (plugin alerts) around their line',
    async (file) => {
      const decoded = await decodeBody('falco', fixture(file))
      expect(decoded.events.length).toBeGreaterThan(0)
      decoded.events.forEach((event, i) => {
        const text = decoded.rawTexts?.[i]
        expect(text).toBeDefined()
        if (event.edge) expect(eventRecordJson(event, text)).toBeUndefined()
        else expect(expectSameRecord(event, text)).toContain(text)
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

  it('gives items the text JSON.parse read only when asked: the line, its integers beyond 2^53 quoted', () => {
    const line = '{"a":1704067200123456789,"b":"x"}'
    expect(splitJsonItems(`${line}\n${line}`, limits).map((i) => i.text)).toEqual([undefined, undefined])
    expect(splitJsonItems(` ${line}\n`, { ...limits, texts: true })[0]?.text).toBe(
      '{"a":"1704067200123456789","b":"x"}',
    )
    expect(splitJsonItems(`{"b":"x"}\n${line}`, { ...limits, texts: true })[0]?.text).toBe('{"b":"x"}')
  })

  it('keeps no texts unless asked (replay holds its drafts)', () => {
    const decoder = createEventDecoder({ agents: [], revoke: { self_identities: [] } })
    const body = fixture('cloudtrail/awsdocs-examples.ndjson')
    expect(decoder.decode('cloudtrail', splitForTest(body), { receivedAt: 0 }).rawTexts).toBeUndefined()
    expect(decoder.normalize('cloudtrail', splitForTest(body), { receivedAt: 0 }).rawTexts).toBeUndefined()
  })

  it('keeps each text beside its event across the parts of a large body, invalid lines between them', async () => {
    const lines = fixture('cloudtrail/stratus-red-team-detonation-logs.ndjson').trim().split('\n')
    const body: string[] = []
    for (let i = 0; body.join('\n').length < 200_000; i++) {
      const record = JSON.parse(lines[i % lines.length] as string)
      record.eventID = `id-${i}`
      body.push(i % 7 === 3 ? '{"broken":' : JSON.stringify(record))
    }
    const decoded = await decodeBody('cloudtrail', body.join('\n'))
    expect(decoded.invalid.length).toBeGreaterThan(0)
    expect(decoded.rawTexts).toHaveLength(decoded.events.length)
    decoded.events.forEach((event, i) => {
      expect(JSON.parse(decoded.rawTexts?.[i] as string)).toStrictEqual(event.raw)
      expect(expectSameRecord(event, decoded.rawTexts?.[i])).toBeDefined()
    })
  })
})

const ctRecord = (
  parameters: string,
  userIdentity = '{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/r/s"}',
) =>
  '{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"iam.amazonaws.com",' +
  `"eventName":"AttachRolePolicy","eventID":"e-1","userIdentity":${userIdentity},"requestParameters":${parameters}}`

const pluginAlert = (fields: string) =>
  '{"time":"2024-01-01T00:00:00.123456789Z","rule":"CloudTrail call","priority":"Notice","source":"aws_cloudtrail",' +
  `"output":"x","output_fields":{"ct.id":"ct-1","ct.name":"AttachRolePolicy","ct.src":"iam.amazonaws.com",${fields}}}`

describe('crafted items', () => {
  const cases: [string, 'falco' | 'cloudtrail', string][] = [
    [
      'duplicate keys (the last wins, at the first key’s place)',
      'cloudtrail',
      ctRecord('{"a":1,"b":2,"a":3}').replace(
        '"eventName":"AttachRolePolicy"',
        '"eventName":"X","eventName":"AttachRolePolicy"',
      ),
    ],
    ['an own __proto__ key', 'cloudtrail', ctRecord('{"__proto__":{"polluted":true},"x":"y"}')],
    [
      'unicode escapes',
      'cloudtrail',
      ctRecord('{"u":"\\u0041\\u00e9\\u4e2d\\ud83d\\ude00","e":"\\"\\\\\\/\\b\\f\\n\\r\\t"}'),
    ],
    ['an escaped lone surrogate', 'cloudtrail', ctRecord('{"s":"\\ud800 and \\udc00"}')],
    [
      'whitespace (spaces, tabs, carriage returns)',
      'cloudtrail',
      ` {\t"eventTime" : "2024-01-01T00:00:00Z" ,\r "eventSource":"s3.amazonaws.com", "eventName" : "GetObject" , "requestParameters" : { "a" :\t1 } }  `,
    ],
    [
      'integers beyond 2^53 (quoted by the exact parse)',
      'cloudtrail',
      ctRecord('{"t":1704067200123456789,"n":-9007199254740993,"ok":9007199254740991}'),
    ],
    [
      'keys and strings named raw',
      'cloudtrail',
      ctRecord(
        '{"raw":null,"a\\"raw":null,"s":"\\"raw\\":null"}',
        '{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/raw\\":null/s","raw":null}',
      ),
    ],
    [
      'numbers that read back the same',
      'cloudtrail',
      ctRecord('{"f":1.5,"e":1E2,"g":0.1e1,"z":0,"n":-1.25e-5,"big":1.7e308,"m":[-0.5,1.0]}'),
    ],
    ['nesting at the depth limit', 'cloudtrail', ctRecord(`{"deep":${'['.repeat(60)}1${']'.repeat(60)}}`)],
    ['non-ASCII text', 'cloudtrail', ctRecord('{"cmd":"café ☕ 𝄞 \u00a0"}')],
    [
      'a CloudTrail plugin alert whose output fields name raw',
      'falco',
      pluginAlert('"raw":null,"w\\":null":1'),
    ],
  ]

  it.each(cases)('%s: the record parses to what JSON.stringify(event) does', async (_, kind, text) => {
    const decoded = await decodeBody(kind, text)
    expect(decoded.invalid).toEqual([])
    expect(decoded.events).toHaveLength(1)
    const record = expectSameRecord(decoded.events[0] as NormalizedEvent, decoded.rawTexts?.[0])
    expect(record).toBeDefined()
  })

  it('serializes an edge event (a Falco alert) whole', async () => {
    const decoded = await decodeBody('falco', fixture('falco/falco.ndjson'))
    const edge = decoded.events.findIndex((e) => e.edge !== undefined)
    expect(decoded.rawTexts?.[edge]).toBeDefined()
    expect(eventRecordJson(decoded.events[edge] as NormalizedEvent, decoded.rawTexts?.[edge])).toBeUndefined()
  })

  it('finds raw’s own member past strings that hold its name, before it and after it', () => {
    const event = {
      time_original: '"raw":null w":null',
      via: 'raw":null',
      raw: { rule: 'r' },
      side: 'core',
      // An agent id the watched workload chose (a fallback names it by its role or workload): after raw.
      agent: { id: 'role/"raw":null', resolved_by: '"raw":null}' },
    } as unknown as NormalizedEvent
    const record = expectSameRecord(event, '{"rule":"r"}') as string
    expect(JSON.parse(record)).toStrictEqual(event)
  })

  const serializedWhole: [string, string][] = [
    ['-0', '{"z":-0}'],
    ['-0.0 in an array', '{"z":[1,-0.0]}'],
    ['a number past 1.8e308', '{"n":1e400}'],
    ['a negative number past it', '{"n":-2E+999}'],
    ['a negative number that underflows to -0', '{"tiny":-1e-400}'],
  ]

  it.each(serializedWhole)(
    '%s: serialized whole (the text would read back otherwise)',
    async (_, parameters) => {
      const decoded = await decodeBody('cloudtrail', ctRecord(parameters))
      expect(decoded.events).toHaveLength(1)
      expect(decoded.rawTexts?.[0]).toBeDefined()
      expect(eventRecordJson(decoded.events[0] as NormalizedEvent, decoded.rawTexts?.[0])).toBeUndefined()
    },
  )

  it('a pretty-printed body (newlines): serialized whole', async () => {
    const decoded = await decodeBody('cloudtrail', JSON.stringify(JSON.parse(ctRecord('{"a":1}')), null, 2))
    expect(decoded.rawTexts?.[0]).toBeDefined()
    expect(eventRecordJson(decoded.events[0] as NormalizedEvent, decoded.rawTexts?.[0])).toBeUndefined()
  })

  it('a raw lone surrogate in the text: serialized whole (JSON.stringify escapes it; SQLite would not keep it)', () => {
    const decoded = decode('cloudtrail', ctRecord('{"s":"\ud800"}'))
    expect(decoded.events).toHaveLength(1)
    expect(eventRecordJson(decoded.events[0] as NormalizedEvent, decoded.rawTexts?.[0])).toBeUndefined()
  })
})

describe('the decoded publisher', () => {
  it('hands the bus each event with its record text; events without a raw text go without', async () => {
    const bus = createMemoryBus()
    const publisher = createDecodedPublisher(
      { maxPending: 10 },
      { bus, metrics: createTestRuntime().metrics },
    )
    const decoded = await decodeBody('cloudtrail', `${ctRecord('{"a":1}')}\n${ctRecord('{"z":-0}')}`)
    expect(decoded.events).toHaveLength(2)
    await publisher.publish('cloudtrail_receiver', decoded, 0)
    const [spliced, whole] = bus.records(eventsTopic)
    const record = eventRecordJson(decoded.events[0] as NormalizedEvent, decoded.rawTexts?.[0])
    expect(spliced?.text).toBe(record?.text)
    expect(spliced?.rawSpan).toStrictEqual(record?.rawSpan)
    expect(spliced?.text).toContain(decoded.rawTexts?.[0])
    expect(whole?.text).toBeUndefined()
    expect(whole?.rawSpan).toBeUndefined()
    expect(whole?.value).toBe(decoded.events[1])
  })
})

describe('the receivers', () => {
  it('POST /v1/cloudtrail publishes each record with its text; POST /v1/falco serializes alerts whole', async () => {
    const h = await startHarness()
    const records = fixtureBuffer('cloudtrail/awsdocs-examples.ndjson').toString()
    const ct = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail',
      payload: records,
      headers: auth,
    })
    expect(ct.statusCode).toBe(202)
    const published = [...h.bus.records(eventsTopic)]
    expect(published.length).toBeGreaterThan(0)
    for (const record of published) {
      expect(record.text).toBeDefined()
      expect(JSON.stringify(JSON.parse(record.text as string))).toBe(JSON.stringify(record.value))
    }
    const alerts = fixtureBuffer('falco/falco.ndjson').toString()
    const falco = await h.server.inject({ method: 'POST', url: '/v1/falco', payload: alerts, headers: auth })
    expect(falco.statusCode).toBe(202)
    const all = h.bus.records(eventsTopic)
    expect(all.length).toBeGreaterThan(published.length)
    for (const record of all.slice(published.length)) expect(record.text).toBeUndefined()
  })
})
