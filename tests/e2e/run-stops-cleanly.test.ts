// `nerve run` stopped with SIGTERM (a deploy): the correlator's final save is committed before its
// subscription leaves, so the bus's offsets table holds the correlate group at the end of every partition
// and the restart reads none of those records again. Without it, the group stayed up to max_interval of
// records behind (here the timer is 10 minutes), and the restart handled them all again.
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import type { NerveProcess } from '../helpers/nerve-process.ts'
import { tempDir } from '../helpers/random-names.ts'
import { falcoAlert } from '../helpers/shell-then-attach.ts'
import { waitFor } from '../helpers/wait-for.ts'
import { nerveRunsStoppedAfterEach, postWithToken, slow } from './nerve-runs.ts'

const config = `
correlation:
  checkpoint: { max_records: 2000, max_interval: 600000 }
`
const alerts = readFileSync(resolve(import.meta.dirname, '../fixtures/falco/falco-website.ndjson'), 'utf8')
const run = nerveRunsStoppedAfterEach()

async function postFalco(n: NerveProcess, body: string) {
  const res = await postWithToken(n, '/v1/falco', body)
  expect(res.status).toBe(202)
  return ((await res.json()) as { accepted: number }).accepted
}

/** A counter of the correlator thread's, as /metrics shows it (0 when not shown yet). */
async function counter(n: NerveProcess, name: string) {
  const text = await (await fetch(`${n.url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(name))
  return Number(line?.split(' ').at(-1) ?? 0)
}
const received = 'nerve_component_received_events_total{component="correlator"}'
const skipped = 'nerve_correlate_replayed_records_skipped_total'

describe('nerve run, stopped with SIGTERM', { timeout: 90_000 }, () => {
  it('commits the correlator’s final save: the group is at every partition’s end, and the restart reads nothing again', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'nerve.yaml'), config)
    const dataDir = join(dir, 'data')
    const env = { NERVE_DATA_DIR: dataDir }
    const first = await run(join(dir, 'nerve.yaml'), env)
    const accepted = await postFalco(first, alerts)
    expect(accepted).toBeGreaterThan(1)
    await waitFor(async () => (await counter(first, received)) === accepted, slow)
    expect(await first.stop()).toBe(0)

    const db = new Database(join(dataDir, 'bus.sqlite'), { readonly: true })
    const ends = db
      .prepare(
        `SELECT partition, max(last_offset) + 1 AS next_offset FROM segments
         WHERE topic_id = (SELECT id FROM topics WHERE name = 'nerve.events.v1')
         GROUP BY partition ORDER BY partition`,
      )
      .all()
    const committed = db
      .prepare(
        `SELECT partition, next_offset FROM group_offsets
         WHERE group_name = 'nerve-correlate' AND next_offset > 0
           AND topic_id = (SELECT id FROM topics WHERE name = 'nerve.events.v1')
         ORDER BY partition`,
      )
      .all()
    db.close()
    expect(ends.length).toBeGreaterThan(0)
    expect(committed).toEqual(ends)

    // The restart: one more alert, and it is the only record the correlator is handed.
    const nerve = await run(join(dir, 'nerve.yaml'), env)
    expect(await postFalco(nerve, falcoAlert)).toBe(1)
    await waitFor(async () => (await counter(nerve, received)) > 0, slow)
    expect(await counter(nerve, received)).toBe(1)
    expect(await counter(nerve, skipped)).toBe(0)
  })
})
