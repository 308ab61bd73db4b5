// The back-off of what the store's writer tries again while its writes wait (the index build, the start of
// a writer thread): at least ten times the failed try's duration, so a slow failure does not stall the writes.
import { describe, expect, it } from 'vitest'
import { failedTryMultiple, RetrySchedule } from '../../../sinks/retry-schedule.ts'

function clocked() {
  const clock = { ms: 0 }
  return { clock, schedule: new RetrySchedule(() => clock.ms) }
}

/** Tries as the writer does: each failing after `tookMs`, the next at once when due. */
function failTries(schedule: RetrySchedule, clock: { ms: number }, tookMs: number, tries: number) {
  const starts: number[] = []
  for (let n = 0; n < tries; n++) {
    starts.push(clock.ms)
    clock.ms += tookMs
    clock.ms += schedule.failed(tookMs)
    expect(schedule.due()).toBe(true)
  }
  return starts
}

describe('a failed try', () => {
  it('is tried again after 1 s, doubled at each failure up to two minutes, when it fails at once', () => {
    const { clock, schedule } = clocked()
    const waits = Array.from({ length: 10 }, () => schedule.failed(2))
    expect(waits).toEqual([1, 2, 4, 8, 16, 32, 64, 120, 120, 120].map((s) => s * 1000))
    expect(schedule.due()).toBe(false)
    clock.ms += 119_999
    expect([schedule.due(), schedule.msUntilDue()]).toEqual([false, 1])
    clock.ms += 1
    expect([schedule.due(), schedule.msUntilDue()]).toEqual([true, 0])
  })

  // A writer thread whose start failed late (a slow open on a full disk): two minutes cap the doubling only,
  // so a start that stalled the writes for 30 s still waits ten times as long before the next.
  it('waits at least ten times the failed try, beyond the two minutes that cap the doubling', () => {
    const { schedule } = clocked()
    expect([
      schedule.failed(5000),
      schedule.failed(30_000),
      schedule.failed(60_000),
      schedule.failed(0),
    ]).toEqual([50_000, 300_000, 600_000, 8000])
  })

  it('that ran 60 s (a full disk failing the build late) waits ten times as long, not 1, 2, 4 … s', () => {
    const { clock, schedule } = clocked()
    const starts = failTries(schedule, clock, 60_000, 4)
    expect(starts).toEqual([0, 660_000, 1_320_000, 1_980_000])
    // The failing tries took 4 minutes of the 37 the writes ran: one part in eleven.
    expect((4 * 60_000) / (clock.ms - 0)).toBeCloseTo(1 / (failedTryMultiple + 1))
  })

  it('backs off from the start again once a try succeeded', () => {
    const { clock, schedule } = clocked()
    schedule.failed(0)
    schedule.failed(0)
    expect(schedule.failures).toBe(2)
    clock.ms += 2000
    schedule.succeeded()
    expect([schedule.due(), schedule.failures, schedule.failed(0)]).toEqual([true, 0, 1000])
  })
})
