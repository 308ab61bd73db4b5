// Event times are parsed once, here: an RFC 3339 string → epoch ms, the nanoseconds within that
// millisecond (Falco keeps 9 digits; ordering must not lose them), and the canonical UTC form with
// exactly 9 fractional digits (Falcosidekick drops trailing zeros; the edge id must not depend on that).
export type EventTime = { ms: number; ns: number; canonical: string }

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|([+-])(\d{2}):(\d{2}))$/

/** Undefined when the string is not an RFC 3339 time or names an impossible date. */
export function parseEventTime(text: string): EventTime | undefined {
  const m = rfc3339.exec(text)
  if (!m) return undefined
  // Read one by one: destructuring a mapped slice goes through the iterator protocol, slow on this path.
  const year = Number(m[1])
  const month = Number(m[2])
  const day = Number(m[3])
  const hour = Number(m[4])
  const minute = Number(m[5])
  const second = Number(m[6])
  if (
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysIn(year, month) ||
    hour > 23 ||
    minute > 59 ||
    second > 60
  )
    return undefined
  const utc = m[8] === 'Z'
  const offsetMinutes = utc ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]))
  const secondsMs = Date.UTC(year, month - 1, day, hour, minute, second) - offsetMinutes * 60_000
  const fraction = (m[7] ?? '').padEnd(9, '0')
  const nanos = Number(fraction)
  const whole = utc ? text.slice(0, 19) : new Date(secondsMs).toISOString().slice(0, 19)
  return { ms: secondsMs + Math.floor(nanos / 1e6), ns: nanos % 1e6, canonical: `${whole}.${fraction}Z` }
}

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}
