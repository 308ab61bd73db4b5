// `since` and `until` of the read API and `nerve dead-letters`: ISO 8601 or epoch milliseconds, the whole
// value. date-fns' parseISO read a time and ignored what followed it (`2026-12-01T00:00:00Zgarbage` was
// taken, and `…+02:00x` lost its offset).
import { describe, expect, it } from 'vitest'
import { isNerveError } from '../../../runtime/errors.ts'
import { parseListQuery } from '../../../runtime/list-query.ts'

const parse = (query: Record<string, string>) => parseListQuery(query, ['agent'])

/** The problem the query's 400 names for `key`. */
function problem(query: Record<string, string>, key: string): string | undefined {
  try {
    parse(query)
  } catch (err) {
    if (!isNerveError(err)) throw err
    const details = err.details as { path: string; message: string }[]
    return details.find((d) => d.path === key)?.message
  }
  return undefined
}

describe('since and until', () => {
  it('takes ISO 8601 times, UTC unless they name an offset, and epoch milliseconds', () => {
    expect(parse({ since: '2026-12-01' }).since).toBe(Date.UTC(2026, 11, 1))
    expect(parse({ since: '2026-12-01T06:00Z' }).since).toBe(Date.UTC(2026, 11, 1, 6))
    expect(parse({ since: '2026-12-01T06:00:00.250Z' }).since).toBe(Date.UTC(2026, 11, 1, 6, 0, 0, 250))
    expect(parse({ since: '2026-12-01T06:00:00' }).since).toBe(Date.UTC(2026, 11, 1, 6))
    expect(parse({ since: '2026-12-01 06:00:00' }).since).toBe(Date.UTC(2026, 11, 1, 6))
    expect(parse({ until: '2026-12-01T06:00:00+02:00' }).until).toBe(Date.UTC(2026, 11, 1, 4))
    expect(parse({ until: '2026-12-01T06:00:00-0130' }).until).toBe(Date.UTC(2026, 11, 1, 7, 30))
    expect(parse({ since: '1796083200000' }).since).toBe(1_796_083_200_000)
  })

  it('refuses a time followed by anything, naming the parameter, the value and the forms it takes', () => {
    for (const [key, value] of [
      ['since', '2026-12-01T00:00:00Zgarbage'],
      ['since', '2026-12-01T00:00:00.123Zx'],
      ['until', '2026-12-01T06:00:00+02:00x'],
      ['until', '2026-12-01T06:00:00Z '],
      ['since', '2026-12-01garbage'],
      ['since', '1796083200000ms'],
    ]) {
      const message = problem({ [key as string]: value as string }, key as string)
      expect(message, value).toBe(
        `must be an ISO 8601 time (2026-12-01, 2026-12-01T06:00Z, 2026-12-01T06:00:00.000+02:00; UTC unless it names an offset) or epoch milliseconds, not ${JSON.stringify(value)}`,
      )
    }
  })

  it('refuses a date or time that does not exist', () => {
    for (const value of [
      '2026-02-30',
      '2026-13-01',
      '2026-12-01T24:00Z',
      '2026-12-01T23:60Z',
      '2026-12-01T06:00+24:00',
    ])
      expect(problem({ since: value }, 'since'), value).toMatch(/^must be an ISO 8601 time/)
  })

  it('quotes a long value shortened', () => {
    const message = problem({ since: `2026-12-01${'x'.repeat(500)}` }, 'since')
    expect(message).toContain(`not "2026-12-01${'x'.repeat(54)}…"`)
  })
})
