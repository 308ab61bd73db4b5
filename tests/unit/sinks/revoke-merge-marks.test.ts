// The marks a merge teaches (an incident that absorbed a revoked one counts as revoked) are kept in the
// outbox so that a restart still knows them, and only as long as they can hold a revoke back: one
// per-agent period after the incident's last revoke. The watched agent opens incident after incident
// and bridges each to a revoked one; every bridge is a mark, and the outbox must not keep them all.
import { afterEach, describe, expect, it } from 'vitest'
import type { Correlation } from '../../../schemas/types.ts'
import { openRevokeOutbox } from '../../../sinks/revoke-outbox.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { dispatcherOnAClock, hour, t0 } from './dispatcher-on-a-clock.ts'

const open: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close()
})

const dispatcher = (dataDir: string, at: number) => dispatcherOnAClock(dataDir, at, { open })

/** Hour `h`: the agent's incident `inc-h` is revoked, then bridged into `inc-h-b`, which a merge marks. */
const hourOfTheAgent = (h: number): Correlation[][] => [
  [makeCorrelation(2 * h, { incident: { id: `inc-${h}` } })],
  [makeCorrelation(2 * h + 1, { incident: { id: `inc-${h}-b`, merged: [`inc-${h}`] }, score: 60 })],
]

describe('merge marks in the revoke outbox', () => {
  it('keeps only the marks that can still hold a revoke back, however many merges the agent makes', async () => {
    const dataDir = tempDir('nerve-revoke-marks')
    const { d, clock, count } = dispatcher(dataDir, t0)
    for (let h = 0; h < 30; h++) {
      clock.t = t0 + h * hour
      for (const batch of hourOfTheAgent(h)) await d.handle(batch)
    }
    expect(await count('dry_run', 'dry_run')).toBe(30)
    await d.close()
    const outbox = openRevokeOutbox(dataDir)
    open.push(outbox)
    // The last hour's mark only: the 29 before it are past their period.
    expect(outbox.mergedRevokes()).toEqual([{ incident_id: 'inc-29-b', time: t0 + 29 * hour, rounds: 1 }])
  })

  it('still knows after a restart within the period that the bridged incident is revoked, not after it', async () => {
    const dataDir = tempDir('nerve-revoke-marks')
    const first = dispatcher(dataDir, t0)
    for (const batch of hourOfTheAgent(0)) await first.d.handle(batch)
    await first.d.close()

    const within = dispatcher(dataDir, t0 + hour - 1)
    await within.d.handle([makeCorrelation(10, { incident: { id: 'inc-0-b' } })])
    expect(await within.count('suppressed', 'incident_already_revoked')).toBe(1)
    await within.d.close()

    const after = dispatcher(dataDir, t0 + hour)
    await after.d.handle([makeCorrelation(11, { incident: { id: 'inc-0-b' } })])
    expect(await after.count('dry_run', 'dry_run')).toBe(1)
  })
})
