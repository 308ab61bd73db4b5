import { describe, expect, it } from 'vitest'
import type { MergeProgress } from '../../../ingest/merge-replay-files.ts'
import { createReplayProgress, formatReplayProgress } from '../../../ingest/replay-progress.ts'

const reading: MergeProgress = {
  phase: 'read',
  files: 500,
  totalFiles: 2000,
  bytes: 25 << 20,
  totalBytes: 100 << 20,
  events: 500_000,
}

describe('replay progress', () => {
  it('shows files, events, events/s and an ETA while reading', () => {
    expect(formatReplayProgress(reading, 5_000)).toBe(
      'replay: reading 500/2,000 files (25%), 500,000 events, 100,000 events/s, ETA 0:15',
    )
  })

  it('shows the event time reached while merging', () => {
    const merging: MergeProgress = {
      ...reading,
      phase: 'merge',
      events: 1_500_000,
      total: 2_000_000,
      eventTime: Date.UTC(2026, 10, 20, 7, 30),
    }
    expect(formatReplayProgress(merging, 10_000)).toBe(
      'replay: merging 1,500,000/2,000,000 events (75%), 150,000 events/s, event time 2026-11-20T07:30:00Z, ETA 0:03',
    )
    expect(formatReplayProgress({ ...merging, events: 1 }, 3_600_000)).toMatch(
      /ETA 7199999:59:59|ETA \d+:\d\d:\d\d$/,
    )
  })

  it('draws in place on a terminal at most every everyMs, and writes nothing elsewhere', () => {
    const written: string[] = []
    let now = 0
    const tty = createReplayProgress(
      { isTTY: true, write: (t) => written.push(t) },
      { now: () => now, everyMs: 250 },
    )
    tty.update(reading)
    now = 100
    tty.update({ ...reading, files: 501 })
    now = 300
    tty.update({ ...reading, files: 502 })
    tty.clear()
    expect(written).toHaveLength(3)
    const erase = '\r\x1b[K'
    expect(written[0]?.startsWith(`${erase}replay: reading 500/2,000 files`)).toBe(true)
    expect(written[1]?.startsWith(`${erase}replay: reading 502/2,000 files`)).toBe(true)
    expect(written[2]).toBe('\r\x1b[K')

    const piped: string[] = []
    const quiet = createReplayProgress({ isTTY: false, write: (t) => piped.push(t) }, { now: () => now })
    quiet.update(reading)
    quiet.clear()
    expect(piped).toEqual([])
  })
})
