// A published record's value as the bus writes it: its JSON text, or INPUT_INVALID naming the record.
//
// The embedded bus stores an edge event's alert output once. A Falco alert's event holds the alert in
// `raw` and its `output` and `output_fields` again in `edge` (the same string and the same object:
// normalize-falco-alert.ts), about 600 of the 2,200 characters of a typical alert's record. Stored, `edge`
// has null in their place, and parseStoredRecord() puts `raw`'s back: the value read is what JSON.parse
// makes of JSON.stringify(event), members in the same order. A normalized edge event's `edge.output` is
// always a string and its `edge.output_fields` always an object, so a null there can only be this; any
// other record (and a record stored whole, by an older nerve or with its publisher's own text) reads as
// JSON.parse reads it.
import { NerveError } from '../runtime/errors.ts'

export function recordJson(value: unknown, index: number): string {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (err) {
    throw new NerveError('INPUT_INVALID', `Record ${index} cannot be written as JSON.`, { cause: err })
  }
  if (text === undefined) throw new NerveError('INPUT_INVALID', `Record ${index} has no JSON value.`)
  return text
}

type EdgeShape = { side?: unknown; raw?: unknown; edge?: unknown }
type Output = { output?: unknown; output_fields?: unknown }

/** recordJson(), with an edge event's output and output fields left to its `raw` (parseStoredRecord). */
export function storedRecordJson(value: unknown, index: number): string {
  const raw = edgeRaw(value)
  if (raw === undefined) return recordJson(value, index)
  const edge = (value as { edge: Output }).edge
  const sameOutput = typeof edge.output === 'string' && edge.output === raw.output
  const sameFields = typeof edge.output_fields === 'object' && edge.output_fields === raw.output_fields
  if (!sameOutput && !sameFields) return recordJson(value, index)
  // Spread copies keep every member where it was; overwriting a member does not move it.
  const stored = { ...edge }
  if (sameOutput) stored.output = null
  if (sameFields) stored.output_fields = null
  return recordJson({ ...(value as object), edge: stored }, index)
}

/** The value of a text that storedRecordJson() (or recordJson()) wrote. */
export function parseStoredRecord(text: string): unknown {
  const value: unknown = JSON.parse(text)
  const raw = edgeRaw(value)
  if (raw === undefined) return value
  const edge = (value as { edge: Output }).edge
  if (edge.output === null) edge.output = raw.output
  if (edge.output_fields === null) edge.output_fields = raw.output_fields
  return value
}

/** An edge event's `raw` alert (its `edge` an object too), or undefined. */
function edgeRaw(value: unknown): Output | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const { side, raw, edge } = value as EdgeShape
  if (side !== 'edge' || typeof raw !== 'object' || raw === null) return undefined
  return typeof edge === 'object' && edge !== null ? (raw as Output) : undefined
}
