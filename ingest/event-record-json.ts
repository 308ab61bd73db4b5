// A core event's bus record as JSON without serializing its `raw` again: `raw` is the CloudTrail record the
// request carried, and the text JSON.parse read to make it is in hand (Decoded.rawTexts). The record is
// JSON.stringify of the event with `raw` null, that null replaced by the text: one JSON value, which
// JSON.parse turns into what it makes of JSON.stringify(event) (same members, same order). `raw` is about
// half of a CloudTrail event's JSON. An edge event (a Falco alert) is serialized whole: its `edge` holds the
// alert's output fields again, so `raw` is a smaller share of its JSON, and the checks and the copy below
// cost about what they save (measured, docs/performance.md).
//
// The record says where the text lies in it (rawSpan): nerve's own count of what it wrote, never searched
// for in the text, so that a reader that does not need `raw` (the correlate thread) can parse the record
// without it.
//
// The text is written as is only when that holds and the bus can carry it; otherwise undefined (the bus
// serializes the event as before):
// - no newline: the embedded bus joins a segment's records with newlines (JSON.stringify never writes one;
//   in valid JSON a newline can only be whitespace, e.g. a pretty-printed body);
// - well-formed UTF-16: JSON.stringify escapes a lone surrogate, which the text would carry raw and SQLite
//   would store as U+FFFD;
// - no number that JSON.stringify writes as something else: -0 (written 0) and ±Infinity (a literal past
//   1.8e308, written null); every other number reads back the same from either text.
import type { RawSpan } from '../bus/bus.ts'
import type { NormalizedEvent } from '../schemas/types.ts'

/** A core event's record: its JSON text, `rawText` the value of its `raw` at `rawSpan`. */
export type EventRecordText = { text: string; rawSpan: RawSpan }

/** A core event's JSON text with `rawText` as its `raw`, or undefined when it must be serialized whole. */
export function eventRecordJson(
  event: NormalizedEvent,
  rawText: string | undefined,
): EventRecordText | undefined {
  if (rawText === undefined || event.edge !== undefined) return undefined
  if (rawText.includes('\n') || !isWellFormed(rawText) || changes(event.raw, -1)) return undefined
  const json = JSON.stringify({ ...event, raw: null })
  // `"raw":null` is `raw`'s own member: inside a JSON string a quote is always escaped, so the sequence
  // can only be a key named raw, and outside `raw` a core event has only keys of fixed names (id, side,
  // times, via, identity, core, agent; no `edge`, whose output fields are the input's own keys).
  const at = rawMember(json)
  if (at === -1) return undefined
  // One flat string of its own: `+` would make a rope holding `rawText`, often a slice of the whole request
  // body, which the bus's recent records would then keep alive with every record it retains.
  const start = at + 6
  return {
    text: [json.slice(0, start), rawText, json.slice(at + 10)].join(''),
    rawSpan: { start, end: start + rawText.length },
  }
}

/**
 * Where `"raw":null` starts, or -1. Searched from the end: a core event's `raw` is its last member but
 * `agent` (resolve-agent-identity.ts appends it), so the search reads about 60 characters, where a forward
 * search read the whole event. The sequence occurs once: inside a JSON string a quote is always escaped, so
 * it can only be a key named raw, and outside `raw` a core event has only keys of fixed names.
 */
const rawMember = (json: string): number => json.lastIndexOf('"raw":null')

/** Past this depth the walk gives up (and the event is serialized whole): input is capped well below it. */
const maxWalkDepth = 256

/**
 * Whether `value` (an object or array) holds a number that JSON.stringify would not write back as the same
 * number. Only objects are recursed into: the strings and booleans that make most of a record are passed
 * over by their type, without a call each.
 */
function holdsChangedNumber(value: object, depth: number): boolean {
  if (depth > maxWalkDepth) return true
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (changes(value[i], depth)) return true
    return false
  }
  // for…in over a parsed object sees exactly its own keys.
  for (const key in value) if (changes((value as Record<string, unknown>)[key], depth)) return true
  return false
}

/** Whether the member `v` (of a value at `depth`) is, or holds, such a number. */
const changes = (v: unknown, depth: number): boolean =>
  typeof v === 'object'
    ? v !== null && holdsChangedNumber(v, depth + 1)
    : typeof v === 'number' && (v === 0 ? 1 / v < 0 : v - v !== 0)

/** String.prototype.isWellFormed (Node 20; not in the ES2023 lib this project compiles against). */
const isWellFormed = (text: string): boolean =>
  (text as unknown as { isWellFormed(): boolean }).isWellFormed()
