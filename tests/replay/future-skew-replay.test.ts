// An item dated past ingest.max_future_skew (judged against the replay's start) is rejected the same way
// whether the main thread decodes (--threads 0), decoding threads do (--threads 2), or the files are
// read in argument order (--order input), and the summary counts it in `future`. Records: Stratus Red
// Team's detonation (DataDog/stratus-red-team, Apache-2.0) and the Falco website's shell alert, as in the
// fixtures.
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/random-names.ts'
import { runReplay as replay } from '../helpers/replay-cli.ts'

const root = resolve(import.meta.dirname, '../..')
const fixtures = join(root, 'tests/fixtures')
const lines = (file: string) =>
  readFileSync(join(fixtures, file), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>)

describe('nerve replay and max_future_skew', { timeout: 120_000 }, () => {
  it('rejects an item dated years ahead alike with one thread, two, and --order input, and counts it', async () => {
    const dir = tempDir('nerve-replay-future')
    const trail = lines('cloudtrail/stratus-red-team-detonation-logs.ndjson')
    const alerts = lines('falco/falcosidekick.ndjson')
    const ahead = new Date(Date.now() + 4 * 365 * 86_400_000).toISOString()
    const future = {
      ...(trail[0] as Record<string, unknown>),
      eventID: 'f0000000-0000-4000-8000-00000000f00d',
      eventTime: ahead,
    }
    const cloudtrail = join(dir, 'cloudtrail.ndjson')
    const falco = join(dir, 'falco.ndjson')
    writeFileSync(cloudtrail, `${[...trail, future].map((r) => JSON.stringify(r)).join('\n')}\n`)
    writeFileSync(falco, `${alerts.map((r) => JSON.stringify(r)).join('\n')}\n`)
    const runs = [
      await replay(['--threads', '0', cloudtrail, falco]),
      await replay(['--threads', '2', cloudtrail, falco]),
      await replay(['--order', 'input', cloudtrail, falco]),
    ]
    for (const r of runs) {
      expect(r.summary).toMatchObject({ invalid: 1, future: 1, read: trail.length + alerts.length + 1 })
      // The lines above the summary (whose files_rejected names no rejected item).
      const listed = r.stderr.slice(0, -1).filter((l) => l.includes('rejected'))
      expect(listed).toHaveLength(1)
      expect(listed[0]).toMatch(/ahead of its arrival/)
    }
    expect(runs[1]?.stdout).toBe(runs[0]?.stdout)
  })
})
