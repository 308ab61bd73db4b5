// A store as an earlier version left it (no per-status index of revoke outcomes), for the tests of the
// index build the writer thread runs on such a store.
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { createCorrelationStore } from '../../../sinks/correlation-store.ts'
import { startStoreWriterThread } from '../../../sinks/store-writer-thread.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { heldBack, makeCorrelation } from './correlation-fixture.ts'

export const statusIndex = 'revoke_outcomes_incident_status'

/** Its data dir: 3 correlations and `outcomes` held-back outcomes, without the index. */
export async function earlierStore(outcomes: number): Promise<string> {
  const dataDir = tempDir('nerve-store-upgrade')
  const earlier = createCorrelationStore({ data_dir: dataDir }, { metrics: createTestRuntime().metrics })
  earlier.writeCorrelations([1, 2, 3].map((n) => makeCorrelation(n)))
  earlier.writeOutcomes(Array.from({ length: outcomes }, (_, n) => heldBack(n)))
  await earlier.close()
  const db = new Database(join(dataDir, 'store.sqlite'))
  db.exec(`DROP INDEX ${statusIndex}`)
  db.close()
  return dataDir
}

export function hasStatusIndex(dataDir: string): boolean {
  const db = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
  try {
    return (
      db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?").get(statusIndex) !==
      undefined
    )
  } finally {
    db.close()
  }
}

/**
 * A writer thread started on an earlier store of 50 outcomes while another connection (a backup, an
 * operator's sqlite3) holds its write lock, once it has told its failed build; on the clock `clock.ms`.
 * What it opens goes into `cleanup`, to be run in reverse.
 */
export async function startWhileLocked(cleanup: (() => Promise<void> | void)[]) {
  const dataDir = await earlierStore(50)
  cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }))
  const rt = createTestRuntime()
  const clock = { ms: 0 }
  const holder = new Database(join(dataDir, 'store.sqlite'))
  holder.exec('BEGIN IMMEDIATE')
  const writer = await startStoreWriterThread(
    { data_dir: dataDir },
    { metrics: rt.metrics, log: rt.log, now: () => clock.ms },
  )
  cleanup.push(() => writer.close())
  const buildLines = () => rt.logs.filter((l) => l.index === statusIndex)
  await waitFor(() => buildLines().some((l) => l.level === 'warn'), { what: 'the failed build told' })
  return { dataDir, rt, clock, holder, writer, buildLines }
}
