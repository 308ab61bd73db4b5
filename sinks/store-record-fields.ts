// The fields the store writer needs from a correlation's JSON text (the bus's record, stored as it is), read
// without parsing the whole record: JSON.parse built every object, array and string of its 2 KB (the
// identity, the reasons, the alert's output) and was about a third of the writer's instructions per
// correlation, for a dozen values. Only for texts nerve's correlate stage wrote with JSON.stringify (the
// embedded bus's: createCorrelationStore's textsFromNerve); a Kafka producer's text may repeat a key (the
// last is JSON.parse's) or put whitespace between tokens, and is parsed whole. Pure.
//
// Exact, whatever the strings hold: in JSON text a `"` inside a string is always escaped (`\"`), so a
// pattern such as `,"edge":{"event_id":"`, whose quotes are unescaped, occurs only where the structure has
// that key with an object value beginning with that key; each key searched for below appears once in the
// correlation's schema (schemas/correlation.schema.json: no object with keys of the watched agent's choice).
// A value is taken only when it reads plainly: a string up to the next `"` with no backslash in it, a number
// up to the next `,` or `}`. Anything else (an escape, a key order or field this reader does not know, a
// fold's `merged`) returns undefined, and the writer parses the whole record instead.
import type { Correlation } from '../schemas/types.ts'

/** What the store writer reads of a correlation: its row's columns and its incident's tally. */
export type CorrelationHead = Pick<Correlation, 'id' | 'time' | 'score'> & {
  rule: Pick<Correlation['rule'], 'id'>
  agent: Pick<Correlation['agent'], 'id'>
  edge: Pick<Correlation['edge'], 'event_id' | 'time' | 'rule'>
  core: Pick<Correlation['core'], 'event_id' | 'time' | 'action'>
  incident: Pick<Correlation['incident'], 'id' | 'first_seen' | 'last_seen' | 'merged'>
}

/**
 * The head of a correlation's JSON text as JSON.stringify wrote it, or undefined when it does not read
 * plainly (then JSON.parse it). Its strings are copies, not slices of the record: the writer keeps event ids
 * in memory (incident-tallies.ts), and a slice would keep its whole record alive.
 */
export function readCorrelationHead(text: string): CorrelationHead | undefined {
  const r = new Reader(text)
  if (!r.expect('{"id":"')) return undefined
  const id = r.string()
  if (id === undefined || !r.expect(',"time":')) return undefined
  const time = r.number()
  if (time === undefined) return undefined
  r.skipTimeIso()
  if (!r.expect(',"rule":{"id":"')) return undefined
  const ruleId = r.string()
  const agentId = r.seek(',"agent":{"id":"') ? r.string() : undefined
  if (ruleId === undefined || agentId === undefined) return undefined
  const edge = r.seek(',"edge":{"event_id":"') ? r.member('rule') : undefined
  const core = edge && r.seek(',"core":{"event_id":"') ? r.member('action') : undefined
  const score = core && r.seek(',"score":') ? r.number() : undefined
  if (!edge || !core || score === undefined) return undefined
  // Near the end, past the reasons: found from the end.
  if (!r.seekLast(',"incident":{"id":"')) return undefined
  const incidentId = r.string()
  if (incidentId === undefined) return undefined
  // The incident is the last object but lag_at_arrival, and these keys are its own.
  const from = r.at
  if (text.includes('"merged":', from)) return undefined
  const firstSeen = r.optionalNumber(',"first_seen":', from)
  const lastSeen = r.optionalNumber(',"last_seen":', from)
  if (firstSeen === null || lastSeen === null) return undefined
  const incident: CorrelationHead['incident'] = { id: incidentId }
  if (firstSeen !== undefined) incident.first_seen = firstSeen
  if (lastSeen !== undefined) incident.last_seen = lastSeen
  return {
    id,
    time,
    rule: { id: ruleId },
    agent: { id: agentId },
    edge: { event_id: edge.id, time: edge.time, rule: edge.value },
    core: { event_id: core.id, time: core.time, action: core.value },
    score,
    incident,
  }
}

class Reader {
  at = 0
  constructor(private readonly text: string) {}

  /** Whether `literal` is next; if so, moves past it. */
  expect(literal: string): boolean {
    if (!this.text.startsWith(literal, this.at)) return false
    this.at += literal.length
    return true
  }

  /** Moves past the next `pattern` (a key and its opening, unique in the schema); false when there is none. */
  seek(pattern: string): boolean {
    const found = this.text.indexOf(pattern, this.at)
    if (found < 0) return false
    this.at = found + pattern.length
    return true
  }

  /** Moves past the last `pattern` when it lies ahead (unique in the schema, so the only one). */
  seekLast(pattern: string): boolean {
    const found = this.text.lastIndexOf(pattern)
    if (found < this.at) return false
    this.at = found + pattern.length
    return true
  }

  /** A string's content from here to its closing quote, copied; undefined when it holds an escape. */
  string(): string | undefined {
    const end = this.text.indexOf('"', this.at)
    if (end < 0) return undefined
    const value = this.text.slice(this.at, end)
    if (value.includes('\\')) return undefined
    this.at = end + 1
    return copyOf(value)
  }

  /** A number from here to the next `,` or `}`; undefined when that is not a plain JSON number. */
  number(): number | undefined {
    let end = this.at
    const text = this.text
    for (; end < text.length; end++) {
      const c = text.charCodeAt(end)
      if (c === 44 || c === 125) break
    }
    const digits = text.slice(this.at, end)
    if (!plainNumber.test(digits)) return undefined
    this.at = end
    return Number(digits)
  }

  /** A number under `key` searched from `from` (undefined: absent; null: not plain). Leaves `at` alone. */
  optionalNumber(key: string, from: number): number | undefined | null {
    const found = this.text.indexOf(key, from)
    if (found < 0) return undefined
    const at = this.at
    this.at = found + key.length
    const value = this.number()
    this.at = at
    return value ?? null
  }

  /** An optional `,"time_iso":"…"` after a time. */
  skipTimeIso(): void {
    if (this.expect(',"time_iso":"')) this.string()
  }

  /** An edge or core member read from its event id on: its id, time and `key` (its rule or action). */
  member(key: 'rule' | 'action'): { id: string; time: number; value: string } | undefined {
    const id = this.string()
    if (id === undefined || !this.expect(',"time":')) return undefined
    const time = this.number()
    if (time === undefined) return undefined
    this.skipTimeIso()
    if (!this.expect(`,"${key}":"`)) return undefined
    const value = this.string()
    return value === undefined ? undefined : { id, time, value }
  }
}

/** A JSON number as JSON.stringify writes one (no leading zeros but a lone 0). */
const plainNumber = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/

/**
 * A string of its own: V8 keeps a slice of 13 characters or more as a view of its parent (the whole record,
 * 2 KB kept alive per event id the writer holds). Joined to another string and sliced again, it is copied
 * into a flat string of its own length first, which the new slice then views (about 130 bytes in all for a
 * 64-character id, against 90 for a JSON.parse'd one, at a third of the cost).
 */
const copyOf = (slice: string): string => (slice.length < 13 ? slice : ` ${slice}`.slice(1))
