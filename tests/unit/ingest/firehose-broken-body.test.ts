// A Firehose body that is not JSON is answered 400 with why and where (the reason and position JSON.parse
// gives), found reading the body in parts: a broken 64 MiB body was parsed whole to say why, holding the
// event loop. Bodies over one part (64 KiB) are built here from the fixture's delivery.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { eventsTopic } from '../../../bus/topics.ts'
import { fixture, startHarness, token } from './ingest-harness.ts'

const sample = JSON.parse(
  fixture('cloudtrail/envelopes/firehose-http-request-cwl-cloudtrail.json').toString(),
) as { requestId: string; timestamp: number; records: { data: string }[] }
const { requestId } = sample
const headers = { 'x-amz-firehose-access-key': token, 'x-amz-firehose-request-id': requestId }

/** The fixture's delivery with its records repeated: about 1 MiB. */
const records = Array.from({ length: 400 }, (_, i) => sample.records[i % sample.records.length])
const body = JSON.stringify({ requestId, timestamp: sample.timestamp, records })
const middle = body.indexOf('{"data"', body.length / 2)
const dataAt = (from: number) => body.indexOf('"data":"', from) + 12

/** JSON.parse's own message for `text` (each case here is one it gives a position for). */
function parseError(text: string): string {
  try {
    JSON.parse(text)
  } catch (err) {
    return (err as Error).message
  }
  throw new Error('the text parses')
}

/** Posts `text` as a Firehose delivery; `longest` is the longest text JSON.parse was given meanwhile. */
async function postWatchingParse(h: Awaited<ReturnType<typeof startHarness>>, text: string) {
  const parse = vi.spyOn(JSON, 'parse')
  try {
    const res = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail/firehose',
      payload: text,
      headers,
    })
    return { res, longest: Math.max(0, ...parse.mock.calls.map(([arg]) => String(arg).length)) }
  } finally {
    vi.restoreAllMocks()
  }
}

describe('a Firehose body that is not JSON', () => {
  afterEach(() => vi.restoreAllMocks())

  const broken: [string, string][] = [
    ['a key without its colon, near the start', body.replace('"requestId":', '"requestId";')],
    [
      'two records without a comma between them, in the middle',
      `${body.slice(0, middle - 1)}${body.slice(middle)}`,
    ],
    [
      'a control character inside a record, in the middle',
      `${body.slice(0, dataAt(middle))}\u0001${body.slice(dataAt(middle))}`,
    ],
    [
      'a bad escape three quarters in',
      `${body.slice(0, dataAt((body.length * 3) / 4))}\\q${body.slice(dataAt((body.length * 3) / 4))}`,
    ],
    [
      'a number without digits after its minus sign',
      body.replace(`"timestamp":${sample.timestamp}`, '"timestamp":-'),
    ],
    ['a body cut short', body.slice(0, -1)],
    ['text after the delivery', `${body} x`],
  ]

  it.each(broken)(
    'answers 400 with the reason and position of %s, without parsing the body whole',
    async (_, text) => {
      const v8 = parseError(text)
      expect(v8).toMatch(/at position \d+$/)
      const h = await startHarness()
      const { res, longest } = await postWatchingParse(h, text)
      expect(res.statusCode).toBe(400)
      expect(res.json()).toEqual({
        requestId,
        timestamp: 1_750_000_000_000,
        errorMessage: `The body is not valid JSON: ${v8}`,
      })
      expect(longest).toBeLessThan(text.length / 4)
      expect(h.bus.records(eventsTopic)).toHaveLength(0)
    },
  )

  it('answers a large JSON string as no delivery request, without parsing it', async () => {
    const h = await startHarness()
    const text = JSON.stringify('x'.repeat(200_000))
    const { res, longest } = await postWatchingParse(h, text)
    expect(res.statusCode).toBe(400)
    expect(res.json().errorMessage).toBe('Not a Firehose delivery request: / must be object')
    expect(longest).toBeLessThan(text.length / 4)
  })

  it('names the position in a small body too, where JSON.parse names none', async () => {
    const h = await startHarness()
    for (const [text, message] of [
      ['', 'Unexpected end of JSON input at position 0'],
      ['{"requestId":tru}', "Unexpected token '}' in JSON at position 16"],
      ['{"requestId":"a","records":[{"data":"x"},]}', "Unexpected token ']' in JSON at position 41"],
    ] as const) {
      const res = await h.server.inject({
        method: 'POST',
        url: '/v1/cloudtrail/firehose',
        payload: text,
        headers,
      })
      expect(res.statusCode).toBe(400)
      expect(res.json().errorMessage).toBe(`The body is not valid JSON: ${message}`)
    }
  })
})
