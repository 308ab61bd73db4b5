// A spooled Falco request is written and read back a part at a time (NDJSON: a header, then a line per
// event and per rejected item), so that a 4 MB body never holds the event loop; what is read back is what
// was written, and a file that does not hold every line it announces is refused, never half-read.
import { describe, expect, it } from 'vitest'
import type { Decoded } from '../../../ingest/decode-events.ts'
import {
  decodeLegacySpooled,
  decodeSpooled,
  encodeSpooled,
  type Spooled,
  spoolPartLines,
} from '../../../ingest/falco-spool-file.ts'
import { countingPause } from '../../helpers/counting-pause.ts'
import { fixture } from './ingest-harness.ts'

const alerts = fixture('falco/falco-website.ndjson')
  .toString()
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as Record<string, unknown>)

/** A large spooled request: `n` events (stand-ins: the codec is plain JSON), two rejected items. */
function request(n: number): Spooled {
  const events = Array.from({ length: n }, (_, i) => ({ ...alerts[i % alerts.length], seq: i }))
  const decoded = {
    events: events as unknown as Decoded['events'],
    invalid: [
      { index: 3, problems: [{ path: '/rule', message: 'must be string' }], original: '{"rule":1}\n' },
      { index: 7, problems: [], original: 'not json "\\u2028" ünï', reason: 'future_time' as const },
    ],
    skipped: { falco_internal: 2 } as Decoded['skipped'],
    internal: 1,
  }
  return { component: 'falco_receiver', receivedAt: 1_750_000_000_123, decoded }
}

describe('a spooled Falco request on disk', () => {
  it('reads back exactly what was written, a part at a time both ways', async () => {
    const entry = request(1_000)
    const writing = countingPause()
    const parts = await encodeSpooled(entry, writing.pause)
    // One turn before each part of spoolPartLines lines: 16 parts of events, 1 of rejected items.
    expect(writing.turns()).toBe(Math.ceil(1_000 / spoolPartLines) + 1)
    expect(writing.turns()).toBeGreaterThanOrEqual(17)
    // At most 64 events serialized in one turn (parts of 125 were tasks of up to 20 ms under load).
    expect(Math.max(...parts.slice(1).map((p) => p.toString().split('\n').length - 1))).toBeLessThanOrEqual(
      64,
    )
    expect(Math.max(...parts.map((p) => p.length))).toBeLessThan(512 * 1024)
    const reading = countingPause()
    const back = await decodeSpooled(Buffer.concat(parts), reading.pause)
    expect(reading.turns()).toBe(writing.turns())
    expect(back).toEqual(entry)
  })

  it('cuts a part at its bytes too, so that large alerts do not make one part of a whole body', async () => {
    // The agent writes its alerts' text: 64 alerts of 40 KB are 2.5 MB, one part by the count of lines.
    const entry = request(spoolPartLines)
    entry.decoded.events = entry.decoded.events.map((e) => ({
      ...e,
      output: 'x'.repeat(40_000),
    })) as unknown as Decoded['events']
    const writing = countingPause()
    const parts = await encodeSpooled(entry, writing.pause)
    expect(Math.max(...parts.map((p) => p.length))).toBeLessThan(256 * 1024)
    const data = Buffer.concat(parts)
    const reading = countingPause()
    expect(await decodeSpooled(data, reading.pause)).toEqual(entry)
    expect(reading.turns()).toBeGreaterThanOrEqual(Math.ceil(data.length / (256 * 1024)))
  })

  it('holds a request with no events, or only events', async () => {
    for (const entry of [
      { ...request(0), decoded: { ...request(0).decoded, invalid: [] } },
      { ...request(3), decoded: { ...request(3).decoded, invalid: [], skipped: {}, internal: 0 } },
    ]) {
      const data = Buffer.concat(await encodeSpooled(entry, async () => {}))
      expect(await decodeSpooled(data, async () => {})).toEqual(entry)
    }
  })

  it('refuses a file cut short, or longer than its header says, rather than drain part of it', async () => {
    const data = Buffer.concat(await encodeSpooled(request(300), async () => {}))
    const cut = data.subarray(0, data.lastIndexOf('\n', data.length - 2) + 1)
    await expect(decodeSpooled(cut, async () => {})).rejects.toThrow('lines missing')
    await expect(decodeSpooled(Buffer.concat([data, Buffer.from('{}\n')]), async () => {})).rejects.toThrow(
      'bytes after',
    )
    await expect(decodeSpooled(Buffer.from('{"component":"x"}'), async () => {})).rejects.toThrow()
  })

  it('still reads a request spooled by the previous version (one JSON document)', () => {
    const entry = request(5)
    expect(decodeLegacySpooled(JSON.stringify(entry))).toEqual(entry)
  })
})
