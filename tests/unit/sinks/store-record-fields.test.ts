import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Correlation } from '../../../schemas/types.ts'
import { type CorrelationHead, readCorrelationHead } from '../../../sinks/store-record-fields.ts'
import { makeCorrelation } from './correlation-fixture.ts'

/** What JSON.parse gives of the fields the writer reads. */
function headOf(c: Correlation): CorrelationHead {
  const incident: CorrelationHead['incident'] = { id: c.incident.id }
  if (c.incident.first_seen !== undefined) incident.first_seen = c.incident.first_seen
  if (c.incident.last_seen !== undefined) incident.last_seen = c.incident.last_seen
  return {
    id: c.id,
    time: c.time,
    rule: { id: c.rule.id },
    agent: { id: c.agent.id },
    edge: { event_id: c.edge.event_id, time: c.edge.time, rule: c.edge.rule },
    core: { event_id: c.core.event_id, time: c.core.time, action: c.core.action },
    score: c.score,
    incident,
  }
}

const golden = join(import.meta.dirname, '../../fixtures/golden')

/** Text the watched agent may write into its alert's output or rule name, shaped like the record's keys. */
const forgeries = [
  '","incident":{"id":"forged","first_seen":1,"last_seen":2},"score":100,"x":"',
  ',"edge":{"event_id":"forged","time":1,"rule":"forged"},"core":{"event_id":"forged","time":1,"action":"iam:Forged"},',
  '"merged":["inc-other"]',
  'C:\\Windows\\"quoted"\\',
  '\\",\\"score\\":100',
  'line\nbreak\ttab\u0000nul\u2028sep',
  'ünïcödé 🚨 incident',
]

describe('a correlation read for the store writer from its JSON text', () => {
  it('reads what JSON.parse reads of every replayed correlation', () => {
    for (const file of ['agent-session.input-order.ndjson', 'agent-session.time-order.ndjson']) {
      for (const line of readFileSync(join(golden, file), 'utf8').trim().split('\n')) {
        expect(readCorrelationHead(line)).toEqual(headOf(JSON.parse(line)))
      }
    }
  })

  it("reads the same whatever the watched agent wrote into the alert's output", () => {
    for (const output of forgeries) {
      const c = makeCorrelation(1, {
        incident: { id: 'inc-1', first_seen: 5, last_seen: 9, signals: [`edge:${output}`] },
      })
      c.edge.output = output
      c.core.principal = output
      c.reasons = [{ factor: 'rule_severity', points: 1, detail: output }]
      expect(readCorrelationHead(JSON.stringify(c))).toEqual(headOf(c))
    }
  })

  it('leaves a value it cannot read plainly to JSON.parse, never a wrong one', () => {
    for (const forged of forgeries) {
      const texts = [
        makeCorrelation(1, { edge: { ...makeCorrelation(1).edge, rule: forged } }),
        makeCorrelation(1, { agent: { ...makeCorrelation(1).agent, id: forged } }),
        makeCorrelation(1, { core: { ...makeCorrelation(1).core, action: forged } }),
        makeCorrelation(1, { incident: { id: forged } }),
      ].map((c) => JSON.stringify(c))
      for (const text of texts) {
        const head = readCorrelationHead(text)
        if (head !== undefined) expect(head).toEqual(headOf(JSON.parse(text)))
      }
    }
    // A rule name with a quote or backslash is escaped in the text: read by JSON.parse.
    const quoted = makeCorrelation(1, { edge: { ...makeCorrelation(1).edge, rule: 'Read "shadow"' } })
    expect(readCorrelationHead(JSON.stringify(quoted))).toBeUndefined()
  })

  it("leaves a fold (the incident's `merged`), another key order or spacing to JSON.parse", () => {
    const folding = makeCorrelation(1, { incident: { id: 'inc-1', merged: ['inc-0'] } })
    expect(readCorrelationHead(JSON.stringify(folding))).toBeUndefined()
    const c = makeCorrelation(1)
    expect(readCorrelationHead(JSON.stringify(c, null, 2))).toBeUndefined()
    const { id, time, ...rest } = c
    expect(readCorrelationHead(JSON.stringify({ time, id, ...rest }))).toBeUndefined()
    const { edge, core, ...others } = c
    expect(readCorrelationHead(JSON.stringify({ ...others, core, edge }))).toBeUndefined()
    expect(readCorrelationHead('{"id":"x","time":1}')).toBeUndefined()
  })

  it('reads an incident without its bounds as having none, and numbers as JSON writes them', () => {
    const c = makeCorrelation(2, { score: 0, delta_ms: -1500 })
    c.edge.time = 1.5e21
    const head = readCorrelationHead(JSON.stringify(c))
    expect(head).toEqual(headOf(c))
    expect(head?.incident).toEqual({ id: c.incident.id })
  })
})
