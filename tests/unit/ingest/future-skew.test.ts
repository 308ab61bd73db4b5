// The watched agent cannot blind a partition with one timestamp: a CloudTrail record dated years ahead
// would move stream time, every later real event of its partition would be "late", and the checkpoint
// would keep it across restarts. Such an item is refused at the door (per item, dead-lettered) and never
// reaches the bus. Records: Stratus Red Team's AttachRolePolicy detonation (DataDog/stratus-red-team,
// Apache-2.0) and the Falco website's shell alert (CC-BY-4.0), as in the fixtures.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { type DeadLetter, deadLetterTopic, eventsTopic } from '../../../bus/topics.ts'
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { auth, fixtures, startHarness } from './ingest-harness.ts'

const stratus = readFileSync(join(fixtures, 'cloudtrail/stratus-red-team-detonation-logs.ndjson'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line) as Record<string, unknown>)
const attachRolePolicy = stratus.find((r) => r.eventID === '39480357-0a1d-4531-a3f2-71be4c041c25') as Record<
  string,
  unknown
>
const falco = readFileSync(join(fixtures, 'falco/falcosidekick.ndjson'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line) as Record<string, unknown>)

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z')
const fourYears = 4 * 365 * 86_400_000

describe('ingest.max_future_skew', () => {
  it('rejects a record dated four years ahead per item, dead-letters it, and accepts the rest', async () => {
    const h = await startHarness()
    const now = Date.now()
    const forged = { ...attachRolePolicy, eventID: 'forged-future', eventTime: iso(now + fourYears) }
    const real = { ...attachRolePolicy, eventTime: iso(now - 60_000) }
    const res = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail',
      payload: { Records: [forged, real] },
      headers: auth,
    })
    expect(res.statusCode).toBe(400)
    const body = res.json()
    expect(body).toMatchObject({ accepted: 1, rejected: 1 })
    expect(body.error.details[0]).toMatchObject({ index: 0, path: '/Records/0/eventTime' })
    expect(body.error.details[0].reason).toMatch(/ahead of its arrival.*max_future_skew/)
    expect(h.bus.records(eventsTopic).map((r) => r.value.id)).toEqual([attachRolePolicy.eventID])
    const letters = h.bus.records<DeadLetter>(deadLetterTopic).map((r) => r.value)
    expect(letters).toHaveLength(1)
    expect(letters[0]?.original).toContain('forged-future')
  })

  it('refuses a Falco alert dated ahead the same way, and keeps one inside the skew', async () => {
    const h = await startHarness()
    const now = Date.now()
    const alert = falco[0] as Record<string, unknown>
    const ahead = { ...alert, time: new Date(now + 2 * 3_600_000).toISOString() }
    const inside = { ...alert, time: new Date(now + 30 * 60_000).toISOString() }
    const res = await h.server.inject({
      method: 'POST',
      url: '/v1/falco',
      payload: [ahead, inside],
      headers: auth,
    })
    expect(res.json()).toMatchObject({ accepted: 1, rejected: 1 })
    expect(res.json().error.details[0]).toMatchObject({ index: 0, path: '/time' })
  })

  it('honours a configured skew, and replay (receivedAt 0) judges against its own start time', () => {
    const file = join(tempDir('nerve-skew'), 'nerve.yaml')
    writeFileSync(file, 'ingest:\n  max_future_skew: 10m\n')
    const base = loadConfig({ file })
    expect(base.ingest.max_future_skew).toBe(600_000)
    const decoder = createEventDecoder({ ...base, agents: [] })
    const t = Date.parse(attachRolePolicy.eventTime as string)
    const items = splitJsonItems(JSON.stringify({ ...attachRolePolicy, eventTime: iso(t + 11 * 60_000) }), {
      maxItems: 10,
      maxDepth: 64,
    })
    const live = decoder.decode('cloudtrail', items, { receivedAt: t })
    expect(live.invalid.map((i) => i.reason)).toEqual(['future_time'])
    const replay = decoder.decode('any', items, { via: 'replay', receivedAt: 0, now: t })
    expect(replay.invalid).toHaveLength(1)
    expect(decoder.decode('any', items, { via: 'replay', receivedAt: 0 }).events).toHaveLength(1)
  })
})
