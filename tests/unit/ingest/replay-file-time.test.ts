import { describe, expect, it } from 'vitest'
import { fileTime, inWindow, parseTimeBound } from '../../../ingest/replay-file-time.ts'

const key =
  'AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/us-east-1/2026/11/02/123456789012_CloudTrail_us-east-1_20261102T0605Z_Xa1b2C3d4E5f6G7h.json.gz'

describe('replay file time', () => {
  it('reads the time CloudTrail writes into a log file name', () => {
    expect(fileTime(key)).toBe(Date.UTC(2026, 10, 2, 6, 5))
    expect(fileTime('falco-20261102T0605Z.ndjson')).toBeUndefined()
    expect(fileTime('/data/alerts.ndjson')).toBeUndefined()
  })

  it('keeps files in [since, until), and files without a time', () => {
    const window = { since: Date.UTC(2026, 10, 2, 6, 5), until: Date.UTC(2026, 10, 2, 7) }
    expect(inWindow(key, window)).toBe(true)
    expect(inWindow(key, { ...window, since: window.since + 1 })).toBe(false)
    expect(inWindow(key, { until: Date.UTC(2026, 10, 2, 6, 5) })).toBe(false)
    expect(inWindow('falco.ndjson', window)).toBe(true)
  })

  it('takes ISO 8601 dates and times, UTC unless they say otherwise', () => {
    expect(parseTimeBound('2026-11-01', '--since')).toBe(Date.UTC(2026, 10, 1))
    expect(parseTimeBound('2026-11-01T06:00Z', '--since')).toBe(Date.UTC(2026, 10, 1, 6))
    expect(parseTimeBound('2026-11-01T06:00', '--since')).toBe(Date.UTC(2026, 10, 1, 6))
    expect(parseTimeBound('2026-11-01T06:00+02:00', '--since')).toBe(Date.UTC(2026, 10, 1, 4))
    expect(parseTimeBound(undefined, '--since')).toBeUndefined()
    expect(() => parseTimeBound('last tuesday', '--until')).toThrow(/--until takes an ISO 8601 date/)
  })

  it('refuses a time followed by anything, and dates that do not exist', () => {
    for (const text of [
      '2026-11-01T06:00Zgarbage',
      '2026-11-01T06:00+02:00x',
      '2026-11-01 ',
      '2026-02-30',
      '2026-11-01T24:00',
    ])
      expect(() => parseTimeBound(text, '--since'), text).toThrow(
        `--since takes an ISO 8601 date such as 2026-11-01 or 2026-11-01T06:00Z (UTC unless it names an offset), not ${JSON.stringify(text)}.`,
      )
  })
})
