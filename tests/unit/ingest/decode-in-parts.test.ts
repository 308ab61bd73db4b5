import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import { decodeInParts, partChars } from '../../../ingest/decode-in-parts.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import { auth, fixtures, startHarness } from './ingest-harness.ts'

const alerts = readFileSync(join(fixtures, 'falco/falco-website.ndjson'), 'utf8').trim().split('\n')
const records = readFileSync(join(fixtures, 'cloudtrail/stratus-red-team-detonation-logs.ndjson'), 'utf8')
  .trim()
  .split('\n')

/** NDJSON of real alerts, each made a distinct event (its own pid), until the body reaches `bytes`. */
function falcoBatch(bytes: number): string {
  const lines: string[] = []
  let size = 0
  for (let i = 0; size < bytes; i++) {
    const alert = JSON.parse(alerts[i % alerts.length] as string) as {
      output_fields: Record<string, unknown>
    }
    alert.output_fields['proc.pid'] = 100_000 + i
    const line = JSON.stringify(alert)
    lines.push(line)
    size += line.length + 1
  }
  return lines.join('\n')
}

const limits = { maxItems: 50_000, maxDepth: 64 }
// Arrival after every fixture's event time: an item dated ahead of its arrival is rejected (max_future_skew).
const receivedAt = Date.parse('2026-12-01T00:00:00Z')
const decoder = () => createEventDecoder({ agents: [], revoke: { self_identities: [] } })

describe('decodeInParts', () => {
  it('gives a large NDJSON body the result decode() gives, bad lines included, in several parts', async () => {
    const lines = falcoBatch(3 * partChars).split('\n')
    lines.splice(7, 0, '{"rule": "cut off', '[1, 2')
    const text = lines.join('\n')
    let pauses = 0
    const inParts = await decodeInParts(decoder(), 'falco', text, limits, { receivedAt }, async () => {
      pauses++
    })
    const whole = decoder().decode('falco', splitJsonItems(text, limits), { receivedAt })
    expect(inParts).toEqual(whole)
    expect(inParts.invalid.map((i) => i.index)).toEqual([7, 8])
    expect(pauses).toBeGreaterThan(3)
  })

  it('decodes a small body at once, without giving the loop back', async () => {
    let pauses = 0
    const decoded = await decodeInParts(
      decoder(),
      'falco',
      alerts[19] as string,
      limits,
      { receivedAt },
      async () => {
        pauses++
      },
    )
    expect(decoded.events).toHaveLength(1)
    expect(pauses).toBe(0)
  })

  it('decodes a CloudTrail NDJSON batch in parts, and applies the record limit to the whole body', async () => {
    const many = Array.from({ length: 400 }, (_, i) => records[i % records.length]).join('\n')
    const text = `${many}\n${' '.repeat(partChars)}`
    const inParts = await decodeInParts(decoder(), 'cloudtrail', text, limits, { receivedAt })
    const whole = decoder().decode('cloudtrail', splitJsonItems(text, limits), { receivedAt })
    expect(inParts).toEqual(whole)
    await expect(
      decodeInParts(decoder(), 'cloudtrail', text, limits, { receivedAt: 1, maxRecords: 399 }),
    ).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' })
  })
})

describe('decodeInParts on one large document', () => {
  const array = (bytes: number) => `[${falcoBatch(bytes).split('\n').join(',\n')}]`
  const logFile = (count: number) =>
    `{"Records":[${Array.from({ length: count }, (_, i) => records[i % records.length]).join(',')}]}`

  /**
   * The most characters JSON.parse read between two pauses of the decode, and the number of pauses;
   * `onPause` runs at each pause too.
   */
  async function stretches(kind: 'falco' | 'cloudtrail', text: string, d = decoder(), onPause = () => {}) {
    const parse = JSON.parse
    let chars = 0
    let most = 0
    let pauses = 0
    const spy = vi.spyOn(JSON, 'parse').mockImplementation((t: string, reviver) => {
      chars += t.length
      return parse(t, reviver)
    })
    try {
      const decoded = await decodeInParts(d, kind, text, limits, { receivedAt }, async () => {
        most = Math.max(most, chars)
        chars = 0
        pauses++
        onPause()
      })
      return { decoded, most: Math.max(most, chars), pauses }
    } finally {
      spy.mockRestore()
    }
  }

  it('parses a 4 MB array of alerts element by element, with the result decode() gives', async () => {
    const text = array(4 * 1024 * 1024)
    const { decoded, most, pauses } = await stretches('falco', text)
    expect(decoded).toEqual(decoder().decode('falco', splitJsonItems(text, limits), { receivedAt }))
    expect(most).toBeLessThan(2 * partChars)
    // Parts of at most 64 alerts (about 3,900 in 4 MB) and 64 KiB: over 300 pauses (159 with parts of 125).
    expect(pauses).toBeGreaterThan(240)
  })

  it('does at most 64 records and about 64 KiB of parsing between two pauses, for NDJSON and one array', async () => {
    // Parts of 125 records and 128 KiB were tasks of 8-18 ms under load (healthz bench, CPU profile).
    for (const text of [falcoBatch(4 * 1024 * 1024), array(4 * 1024 * 1024)]) {
      const d = decoder()
      const records: number[] = []
      let since = 0
      const normalizeInSteps = d.normalizeInSteps
      d.normalizeInSteps = function* (kind, items, ctx, step) {
        const steps = normalizeInSteps(kind, items, ctx, step)
        let next = steps.next()
        for (; !next.done; next = steps.next()) {
          since += Math.min(step, items.length)
          yield
        }
        since += Math.min(step, items.length)
        return next.value
      }
      const resolve = d.resolve
      d.resolve = (drafts) => {
        since += drafts.length
        return resolve(drafts)
      }
      const { decoded, most } = await stretches('falco', text, d, () => {
        records.push(since)
        since = 0
      })
      expect(decoded.events.length).toBeGreaterThan(3800)
      expect(Math.max(...records, since)).toBeLessThanOrEqual(64)
      expect(most).toBeLessThan(80_000)
    }
  })

  it('parses a 4 MB CloudTrail log file record by record, with the result decode() gives', async () => {
    const text = logFile(4000)
    expect(text.length).toBeGreaterThan(4 * 1024 * 1024)
    const { decoded, most } = await stretches('cloudtrail', text)
    expect(decoded).toEqual(decoder().decode('cloudtrail', splitJsonItems(text, limits), { receivedAt }))
    expect(decoded.events).toHaveLength(4000)
    expect(most).toBeLessThan(2 * partChars)
  })

  it('normalizes the records of one log file a step at a time, as normalize() does at once', () => {
    const items = splitJsonItems(logFile(1000), limits)
    const steps = decoder().normalizeInSteps('cloudtrail', items, { receivedAt }, 250)
    let yields = 0
    let step = steps.next()
    for (; !step.done; step = steps.next()) yields++
    expect(yields).toBe(3)
    expect(step.value).toEqual(decoder().normalize('cloudtrail', items, { receivedAt }))
  })
})

describe('large bodies on the ingest server', () => {
  it('gives the event loop back while three 4 MB batches are decoded', async () => {
    // Every event of the batches published: the edge budget, which would fold most of them, is off.
    const { ingest, bus } = await startHarness({ agentBudget: 0 })
    const route = ingest.routes.find((r) => r.url === '/v1/falco')
    if (!route) throw new Error('no /v1/falco route')
    const order: string[] = []
    const publish = bus.publish.bind(bus)
    const sizes: number[] = []
    bus.publish = async (topic, records) => {
      order.push('publish')
      sizes.push(records.length)
      return publish(topic, records)
    }
    const body = Buffer.from(falcoBatch(4 * 1024 * 1024))
    const handling = [0, 1, 2].map(() =>
      route.handle({ body, headers: auth, query: {}, receivedAt: 1_750_000_000_000 }),
    )
    // Queued behind the three handlers' first steps: it runs only if decoding gives the loop back (as it
    // must for /healthz and every other request to be answered meanwhile).
    setImmediate(() => order.push('loop turned'))
    const answers = await Promise.all(handling)
    const count = body.toString().split('\n').length
    expect(answers.map((a) => [a.status, (a.body as { accepted: number }).accepted])).toEqual([
      [202, count],
      [202, count],
      [202, count],
    ])
    expect(order[0]).toBe('loop turned')
    // Each publish serializes at most 64 events in one task (125 were 10-16 ms tasks under load).
    expect(Math.max(...sizes)).toBeLessThanOrEqual(64)
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(3 * count)
  }, 60_000)
})
