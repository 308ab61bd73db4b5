import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseEventTime } from '../../../ingest/parse-event-time.ts'

// The RFC 3339 rule as one regex, the oracle for the character-by-character reader.
const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|([+-])(\d{2}):(\d{2}))$/
const reference = (text: string) => {
  const m = rfc3339.exec(text)
  if (!m) return undefined
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  const days = month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31
  if (month < 1 || month > 12 || day < 1 || day > days || hour > 23 || minute > 59 || second > 60)
    return undefined
  const offset = m[8] === 'Z' ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]))
  const secondsMs = Date.UTC(year, month - 1, day, hour, minute, second) - offset * 60_000
  const fraction = (m[7] ?? '').padEnd(9, '0')
  const whole = m[8] === 'Z' ? text.slice(0, 19) : new Date(secondsMs).toISOString().slice(0, 19)
  const nanos = Number(fraction)
  return { ms: secondsMs + Math.floor(nanos / 1e6), ns: nanos % 1e6, canonical: `${whole}.${fraction}Z` }
}

describe('parseEventTime against the RFC 3339 rule (property)', () => {
  const two = fc.integer({ min: 0, max: 99 }).map((n) => String(n).padStart(2, '0'))
  const time = fc
    .record({
      year: fc.integer({ min: 0, max: 9999 }).map((n) => String(n).padStart(4, '0')),
      month: two,
      day: two,
      hour: two,
      minute: two,
      second: two,
      fraction: fc.option(fc.stringMatching(/^\d{0,11}$/)),
      zone: fc.oneof(fc.constant('Z'), fc.constant('z'), fc.tuple(fc.constantFrom('+', '-'), two, two)),
    })
    .map(({ year, month, day, hour, minute, second, fraction, zone }) => {
      const offset = typeof zone === 'string' ? zone : `${zone[0]}${zone[1]}:${zone[2]}`
      return `${year}-${month}-${day}T${hour}:${minute}:${second}${fraction === null ? '' : `.${fraction}`}${offset}`
    })
  // Well-formed times, and the same with one character replaced, dropped or doubled.
  const mutated = fc
    .tuple(time, fc.nat(40), fc.constantFrom('', 'x', '1', '-', ':', 'T', 'Z', '.', ' '))
    .map(
      ([text, at, c]) =>
        `${text.slice(0, at % (text.length + 1))}${c}${text.slice((at % (text.length + 1)) + 1)}`,
    )

  it('reads exactly the times the regex accepts, to the same ms, ns and canonical form', () => {
    fc.assert(
      fc.property(fc.oneof(time, mutated), (text) => {
        expect(parseEventTime(text)).toEqual(reference(text))
      }),
      { numRuns: 20_000 },
    )
    expect(parseEventTime('2024-02-29T23:59:60.5+01:30')).toEqual(reference('2024-02-29T23:59:60.5+01:30'))
  })

  it('counts days as Date.UTC does across eras, before 1970, and for years 0 to 99', () => {
    for (const text of [
      '0000-01-01T00:00:00Z',
      '0050-03-01T12:00:00.1Z',
      '0099-12-31T23:59:59.999999999Z',
      '0100-02-28T00:00:00Z',
      '1600-02-29T00:00:00Z',
      '1900-03-01T00:00:00Z',
      '1969-12-31T23:59:59.999999999Z',
      '1970-01-01T00:00:00.000000001Z',
      '2000-02-29T12:34:56.000000000Z',
      '2100-03-01T00:00:00-23:59',
      '9999-12-31T23:59:60.123456789Z',
    ]) {
      expect(parseEventTime(text)).toEqual(reference(text))
    }
    // Falco's own form is its canonical form: the same string comes back.
    const falco = '2025-02-10T09:15:40.698757000Z'
    expect(parseEventTime(falco)?.canonical).toBe(falco)
  })
})
