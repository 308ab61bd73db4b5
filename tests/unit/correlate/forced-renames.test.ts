// The watched agent chooses its alert times: alerts sent each 1 ms earlier than the last, against one
// CloudTrail call inside the rule's 2-minute `before` window, each came before the incident's earliest
// correlation, so each renamed the incident (group-incidents.ts), was emitted whatever the per-rule bound,
// and made the store's fold rewrite every stored correlation of the incident: 2,000 such alerts cost the
// store writer 78 s of CPU (77 ms each for the last 500). The per-agent cap does not stop it: each alert
// correlates on arrival and the cap sheds an older one. Real inputs: the Falco website's shell alert and a
// Stratus Red Team CloudTrail record (iam-backdoor-role), through the decoder, the correlator and the store.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { defaultMaxPerRule, maxRenames } from '../../../correlate/group-incidents.ts'
import { createReplay } from '../../../correlate/replay-correlations.ts'
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import type { Correlation } from '../../../schemas/types.ts'
import { closeStores, openStore } from '../sinks/store-harness.ts'
import { victimConfig } from './stratus-detonations.ts'

const fixtures = join(import.meta.dirname, '../../fixtures')
const lineOf = (file: string, n: number) =>
  JSON.parse(readFileSync(join(fixtures, file), 'utf8').trim().split('\n')[n - 1] as string) as {
    eventTime: string
    time: string
  }
const call = lineOf('cloudtrail/stratus-red-team-detonation-logs.ndjson', 293)
const shell = lineOf('falco/falco-website.ndjson', 10)
const callTime = Date.parse(call.eventTime)
const decoder = createEventDecoder(victimConfig)

/** The call first (as it is buffered before the alerts come), then alerts at `offsets` ms after it. */
function run(offsets: readonly number[]): Correlation[] {
  const alerts = offsets.map((d) => ({ ...shell, time: new Date(callTime + d).toISOString() }))
  const text = [call, ...alerts].map((o) => JSON.stringify(o)).join('\n')
  const { events } = decoder.decode('any', splitJsonItems(text, { maxItems: 10_000, maxDepth: 64 }), {
    receivedAt: 0,
  })
  const replay = createReplay(victimConfig)
  return events.flatMap((e) => replay.push(e).correlations)
}

/** The store, fed one correlation per batch as a live writer would be. */
function store(correlations: readonly Correlation[]) {
  const { store } = openStore()
  for (const c of correlations) store.writeCorrelations([JSON.stringify(c)])
  return store
}

afterEach(closeStores)

describe('renames forced by alerts each earlier than the last', () => {
  it('renames the incident at most maxRenames times, so the store folds a bounded number of times', () => {
    const correlations = run(Array.from({ length: 2000 }, (_, i) => 120_000 - i))
    const renaming = correlations.filter((c) => c.incident.merged)
    expect(renaming.length).toBe(maxRenames)
    // The per-rule bound holds again: what the store receives is bounded, and so is each fold's work
    // (at most the incident's stored correlations, each rewritten once per rename).
    expect(correlations.length).toBe(defaultMaxPerRule)
    const last = correlations.at(-1) as Correlation
    const s = store(correlations)
    const [incident, ...others] = s.incidents({ limit: 10, text: {} })
    expect(others).toEqual([])
    expect(incident).toMatchObject({ id: last.incident.id, correlations: correlations.length })
    const stored = s.incident(last.incident.id)?.correlations ?? []
    expect(stored).toHaveLength(correlations.length)
    expect(new Set(stored.map((c) => c.incident.id))).toEqual(new Set([last.incident.id]))
  })

  it('still renames on ordinary out-of-order arrival, to the id of time order', () => {
    const live = run([90_000, 60_000, 30_000])
    const inTime = run([30_000, 60_000, 90_000])
    expect(live.map((c) => c.incident.merged?.length ?? 0)).toEqual([0, 1, 1])
    const id = (inTime.at(-1) as Correlation).incident.id
    expect((live.at(-1) as Correlation).incident.id).toBe(id)
    const s = store(live)
    expect(s.incidents({ limit: 10, text: {} }).map((i) => [i.id, i.correlations])).toEqual([[id, 3]])
    expect(new Set(s.incident(id)?.correlations.map((c) => c.incident.id))).toEqual(new Set([id]))
  })
})
