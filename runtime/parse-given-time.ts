// A time an operator gives (the read API's `since`/`until`, `nerve dead-letters --since`, `nerve replay
// --since/--until`) → epoch ms, the whole value or nothing: date-fns' parseISO read a time and ignored what
// followed it (`2026-12-01T00:00:00Zgarbage` was taken, `…+02:00x` lost its offset), and Date.parse took
// 2026-02-30 for March 2. One grammar for every place: an ISO 8601 date, or date and time, in its extended
// form, UTC unless it names an offset. Pure.

const iso =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|([+-])(\d{2})(?::?(\d{2}))?)?)?$/

/** The forms, as the errors name them. */
export const givenTimeForms =
  '2026-12-01, 2026-12-01T06:00Z, 2026-12-01T06:00:00.000+02:00; UTC unless it names an offset'

/**
 * Epoch ms of `text`, or undefined when it is not one of the forms (or names a date or time that does not
 * exist: February 30th, 24:00, an offset of 24 hours). `epochMs`: digits alone are epoch milliseconds too.
 */
export function parseGivenTime(text: string, options: { epochMs?: boolean } = {}): number | undefined {
  if (options.epochMs && /^\d{1,15}$/.test(text)) return Number(text)
  const m = iso.exec(text)
  if (!m) return undefined
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = [1, 2, 3, 4, 5, 6, 10, 11].map(
    (i) => Number(m[i] ?? 0),
  ) as number[]
  const fraction = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'))
  const ms = Date.UTC(year as number, (month as number) - 1, day, hour, minute, second, fraction)
  // Date.UTC rolls over (month 13, day 30 of February, minute 60): a value that does not read back is none.
  const back = new Date(ms)
  if (
    back.getUTCFullYear() !== year ||
    back.getUTCMonth() !== (month as number) - 1 ||
    back.getUTCDate() !== day ||
    back.getUTCHours() !== hour ||
    back.getUTCMinutes() !== minute ||
    back.getUTCSeconds() !== second ||
    (offsetHours as number) > 23 ||
    (offsetMinutes as number) > 59
  )
    return undefined
  const offset = ((offsetHours as number) * 60 + (offsetMinutes as number)) * 60_000
  return m[9] === '-' ? ms + offset : ms - offset
}

/** `value` as an error quotes it: JSON-quoted, at most 64 characters of it. */
export const quotedGiven = (value: string): string =>
  value.length > 64 ? `${JSON.stringify(value.slice(0, 64)).slice(0, -1)}…"` : JSON.stringify(value)
