// The summary's `spilled_runs` counts the sorted runs replay wrote because the records outgrew the
// memory budget, whether the main thread decodes or decoding threads do. Before, a small replay said 0
// without threads and one per thread with them: each thread writes its last records to disk at the end
// to hand them to the main thread (which keeps its own last run in memory), and those were counted.
import { describe, expect, it } from 'vitest'
import { writeHourlyTrail } from '../helpers/hourly-trail-files.ts'
import { tempDir } from '../helpers/random-names.ts'
import { runReplay as replay } from '../helpers/replay-cli.ts'

describe('spilled_runs', { timeout: 120_000 }, () => {
  it('is 0 with and without decoding threads when the budget holds every record, and counts spills in both', async () => {
    const files = writeHourlyTrail(tempDir(), { hours: 120, recordsPerFile: 60 })
    const fits = await Promise.all(
      ['0', '1', '2'].map((threads) => replay(['--threads', threads, '--memory-budget', '1G', ...files])),
    )
    for (const r of fits) expect(r.summary.spilled_runs).toBe(0)
    const spills = await Promise.all(
      ['0', '2'].map((threads) => replay(['--threads', threads, '--memory-budget', '1M', ...files])),
    )
    for (const r of spills) {
      expect(r.summary.spilled_runs).toBeGreaterThan(2)
      expect(r.stdout).toBe(fits[0]?.stdout)
    }
  })
})
