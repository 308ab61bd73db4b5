// `nerve replay --order time` merges its files under a memory budget, spilling sorted runs to disk. The
// output must not depend on the budget nor on the order of the arguments: the same shuffled set of
// hourly files, given in two orders with a budget that spills and one that does not, decoded in the main
// thread, beside one decoding thread or in two decoding threads, gives the same bytes.
import { readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { shuffled, writeHourlyTrail } from '../helpers/hourly-trail-files.ts'
import { tempDir } from '../helpers/random-names.ts'
import { runReplay as replay } from '../helpers/replay-cli.ts'

describe('nerve replay --order time under a memory budget', { timeout: 120_000 }, () => {
  it('gives the same bytes with a budget that spills and one that does not, whatever the argument order', async () => {
    const dir = tempDir()
    const files = writeHourlyTrail(dir, { hours: 120, recordsPerFile: 60, ties: true })
    const spill = tempDir()
    const small = await replay(['--memory-budget', '1M', '--spill-dir', spill, ...shuffled(files, 1)])
    const large = await replay(['--memory-budget', '1G', ...shuffled(files, 2)])
    expect(small.summary.spilled_runs).toBeGreaterThan(3)
    expect(large.summary.spilled_runs).toBe(0)
    expect(small.stdout).toBe(large.stdout)
    expect(small.summary).toMatchObject({ read: 120 * (60 + 2 + 2), invalid: 0, duplicate: 120 })
    // Every hour's session correlates: 10 pairs, as in the golden replay of the fixture.
    expect(small.summary.correlations).toBe(120 * 10)
    expect({ ...small.summary, elapsed_ms: 0, peak_rss_mib: 0, spilled_runs: 0 }).toEqual({
      ...large.summary,
      elapsed_ms: 0,
      peak_rss_mib: 0,
      spilled_runs: 0,
    })
    // The spill dir is removed once the replay is done.
    expect(readdirSync(spill)).toEqual([])
    expect(small.stdout.trim().split('\n')).toHaveLength(120 * 10)
    // Decoding threads change nothing either.
    const threaded = await replay(['--threads', '2', '--memory-budget', '1M', ...shuffled(files, 3)])
    expect(threaded.stdout).toBe(large.stdout)
    expect(threaded.summary.correlations).toBe(large.summary.correlations)
    // Nor does the main thread decoding beside one thread (--threads 1).
    const beside = await replay(['--threads', '1', '--memory-budget', '1M', ...shuffled(files, 5)])
    expect(beside.stdout).toBe(large.stdout)
    // The directory, and a quoted glob of its files, read the same files.
    expect((await replay([dir])).stdout).toBe(large.stdout)
    expect((await replay([`${dir}/*CloudTrail*.json.gz`, `${dir}/falco-*`])).stdout).toBe(large.stdout)
  })
})
