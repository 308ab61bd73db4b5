// A published record's value as the bus writes it: its JSON text, or INPUT_INVALID naming the record.
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
