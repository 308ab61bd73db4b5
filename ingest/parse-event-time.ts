// Event times are parsed once, here: an RFC 3339 string → epoch ms, the nanoseconds within that
// millisecond (Falco keeps 9 digits; ordering must not lose them), and the canonical UTC form with
// exactly 9 fractional digits (Falcosidekick drops trailing zeros; the edge id must not depend on that).
export type EventTime = { ms: number; ns: number; canonical: string }

/**
 * Undefined when the string is not an RFC 3339 time (YYYY-MM-DDTHH:MM:SS, 1 to 9 fractional digits, Z or
 * ±HH:MM) or names an impossible date. Read character by character: a regex with eleven groups allocated
 * a match and a dozen strings per event.
 */
export function parseEventTime(text: string): EventTime | undefined {
  const n = text.length
  if (n < 20 || !separatorsAt(text)) return undefined
  const year = digitsAt(text, 0, 4)
  const month = digitsAt(text, 5, 2)
  const day = digitsAt(text, 8, 2)
  const hour = digitsAt(text, 11, 2)
  const minute = digitsAt(text, 14, 2)
  const second = digitsAt(text, 17, 2)
  let i = 19
  // The fraction's value in nanoseconds, read with its digits (a slice, a pad and Number() of it cost
  // more than the rest of the time).
  let nanos = 0
  let digits = 0
  if (text.charCodeAt(i) === 46) {
    const start = ++i
    while (i < n && isDigit(text.charCodeAt(i))) {
      if (i - start < 9) nanos = nanos * 10 + (text.charCodeAt(i) - 48)
      i++
    }
    digits = i - start
    if (digits === 0 || digits > 9) return undefined
    for (let d = digits; d < 9; d++) nanos *= 10
  }
  const zone = text.charCodeAt(i)
  const utc = zone === 90 && i + 1 === n
  let offsetMinutes = 0
  if (!utc) {
    if ((zone !== 43 && zone !== 45) || i + 6 !== n || text.charCodeAt(i + 3) !== 58) return undefined
    const offsetHours = digitsAt(text, i + 1, 2)
    const offsetRest = digitsAt(text, i + 4, 2)
    if (offsetHours < 0 || offsetRest < 0) return undefined
    offsetMinutes = (zone === 45 ? -1 : 1) * (offsetHours * 60 + offsetRest)
  }
  if (
    year < 0 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysIn(year, month) ||
    hour < 0 ||
    hour > 23 ||
    minute < 0 ||
    minute > 59 ||
    second < 0 ||
    second > 60
  )
    return undefined
  const secondsMs = utcMs(year, month, day, hour, minute, second) - offsetMinutes * 60_000
  // A UTC time written with all 9 digits (Falco's own form) is its canonical form already.
  const canonical =
    utc && digits === 9
      ? text
      : `${utc ? text.slice(0, 19) : new Date(secondsMs).toISOString().slice(0, 19)}.${nanos === 0 ? '000000000' : String(nanos).padStart(9, '0')}Z`
  return { ms: secondsMs + Math.floor(nanos / 1e6), ns: nanos % 1e6, canonical }
}

/**
 * Date.UTC of a valid date and time, by the civil-calendar arithmetic (days from 1970-01-01 in the
 * proleptic Gregorian calendar): Date.UTC is a call into the engine's runtime. Years 0–99 keep Date.UTC's
 * own reading of them (1900 + year), so both give the same number for every input.
 */
function utcMs(year: number, month: number, day: number, hour: number, minute: number, second: number) {
  if (year < 100) return Date.UTC(year, month - 1, day, hour, minute, second)
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  const days = era * 146_097 + dayOfEra - 719_468
  return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000
}

/** The - - T : : of YYYY-MM-DDTHH:MM:SS. */
function separatorsAt(text: string): boolean {
  return (
    text.charCodeAt(4) === 45 &&
    text.charCodeAt(7) === 45 &&
    text.charCodeAt(10) === 84 &&
    text.charCodeAt(13) === 58 &&
    text.charCodeAt(16) === 58
  )
}

/** The number written by `count` ASCII digits at `at`, or -1. */
function digitsAt(text: string, at: number, count: number): number {
  let value = 0
  for (let i = at; i < at + count; i++) {
    const c = text.charCodeAt(i)
    if (!isDigit(c)) return -1
    value = value * 10 + (c - 48)
  }
  return value
}

const isDigit = (c: number) => c >= 48 && c <= 57

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}
