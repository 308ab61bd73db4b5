// The index a store of an earlier version lacks (revoke_outcomes_incident_status) is built by the writer
// thread once it has said it is ready. A build that fails (another connection holds the write lock, a full
// disk, an I/O error) must not end the thread: the writes go on with the older index, the build is tried
// again later, and a thread that does end is told.
import { spawn } from 'node:child_process'
import { rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { errorFieldsOf } from '../../../runtime/errors.ts'
import { parseListQuery } from '../../../runtime/list-query.ts'
import { createStoreReads } from '../../../sinks/store-reads.ts'
import { startStoreWriterThread } from '../../../sinks/store-writer-thread.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { heldBack, makeCorrelation } from './correlation-fixture.ts'
import {
  earlierStore,
  hasStatusIndex as hasIndex,
  statusIndex as index,
  startWhileLocked,
} from './earlier-store.ts'
import { storeErrors } from './store-errors.ts'

const cleanup: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

describe('an index build that fails', () => {
  it('leaves the writer running on the older index, is tried again after its back-off, and every write is stored', async () => {
    // Another connection (a backup, an operator's sqlite3) holds the write lock while nerve starts.
    const { dataDir, rt, clock, holder, writer, buildLines } = await startWhileLocked(cleanup)
    const failedBuilds = () => buildLines().filter((l) => l.level === 'warn')
    const [first] = failedBuilds()
    expect(first).toMatchObject({
      error_code: 'SINK_UNAVAILABLE',
      sqlite_code: 'SQLITE_BUSY',
      duration_ms: expect.any(Number),
      msg: expect.stringMatching(/writes go on without it/),
    })
    // A second at least, and ten times what the failed build took when that is longer.
    expect(first?.retry_in_ms).toBe(Math.max(1000, 10 * (first?.duration_ms as number)))
    // Writes the bus hands over meanwhile fail while the lock is held (the bus delivers them again), and
    // none ends the thread or starts another: the build is not tried again before its back-off has passed.
    const batches = Array.from({ length: 20 }, (_, n) => [makeCorrelation(10 + n)])
    for (const batch of batches) await expect(writer.writeCorrelations(batch)).rejects.toThrow()
    clock.ms += (first?.retry_in_ms as number) - 1
    await expect(writer.writeCorrelations(batches[0] ?? [])).rejects.toThrow()
    expect(buildLines()).toHaveLength(2)
    expect(rt.logs.filter((l) => l.level === 'error')).toEqual([])

    // Reads answer meanwhile, with the older (incident, time) index.
    expect(hasIndex(dataDir)).toBe(false)
    const reader = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
    cleanup.push(() => {
      reader.close()
    })
    const suppressed = parseListQuery({ incident: 'inc-data-cleaner', status: 'suppressed', limit: '1000' }, [
      'incident',
      'status',
    ])
    expect(createStoreReads(reader).revokes(suppressed)).toHaveLength(50)

    // Once the back-off has passed, the next write tries again: told as a retry, failed again, the wait doubled.
    clock.ms += 1
    await expect(writer.writeCorrelations(batches[0] ?? [])).rejects.toThrow()
    const second = failedBuilds()[1]
    expect(second?.retry_in_ms).toBe(Math.max(2000, 10 * (second?.duration_ms as number)))

    holder.exec('COMMIT')
    holder.close()
    // The bus's redelivery: each batch again, stored without the build until its back-off has passed.
    for (const batch of batches) expect(await writer.writeCorrelations(batch)).toMatchObject({ stored: 1 })
    expect(hasIndex(dataDir)).toBe(false)
    clock.ms += second?.retry_in_ms as number
    expect(await writer.writeOutcomes([heldBack(0)])).toMatchObject({ stored: 0 })
    expect(hasIndex(dataDir)).toBe(true)
    expect(buildLines().map((l) => [l.level, l.msg, l.failures])).toEqual([
      ['info', expect.stringMatching(/^Building an index this version needs, once/), undefined],
      ['warn', expect.stringMatching(/^Could not build the index/), undefined],
      ['info', expect.stringMatching(/^Retrying the build of an index this version needs/), 1],
      ['warn', expect.stringMatching(/^Could not build the index/), undefined],
      ['info', expect.stringMatching(/^Retrying the build of an index this version needs/), 2],
      ['info', "Built the index; the store's writes go on.", undefined],
    ])
    expect(createStoreReads(reader).correlations(parseListQuery({ limit: '1000' }, ['agent']))).toHaveLength(
      23,
    )
    expect(await storeErrors(rt, { error_code: 'SINK_UNAVAILABLE', stage: 'index_build' })).toBe(2)
  })
})

describe('a writer thread that ends', () => {
  // What an operator reads of a thread that dies opening the store: a file that is no database is no state
  // waiting mends (INTERNAL); a full disk (here the store's name points at /dev/full, where every write fails
  // with ENOSPC) says STORAGE_FULL, as a write that fails on it does. The start rejects with the same code and
  // SQLite's, which the bus's line for each batch then names.
  it.each([
    {
      what: 'a file that is no database',
      leave: (file: string) => writeFileSync(file, 'not a database, whatever its name says'.repeat(200)),
      code: 'INTERNAL',
      sqlite: 'SQLITE_NOTADB',
      text: 'file is not a database',
    },
    {
      what: 'a full disk',
      leave: (file: string) => symlinkSync('/dev/full', file),
      code: 'STORAGE_FULL',
      sqlite: 'SQLITE_FULL',
      text: 'database or disk is full',
    },
  ])(
    'is told with its code and what happens next, and counted: $what',
    async ({ leave, code, sqlite, text }) => {
      const dataDir = tempDir('nerve-store-broken')
      cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }))
      leave(join(dataDir, 'store.sqlite'))
      const rt = createTestRuntime()
      const started = startStoreWriterThread({ data_dir: dataDir }, { metrics: rt.metrics, log: rt.log })
      const refusal = await started.then(
        () => undefined,
        (err: unknown) => err,
      )
      // `nerve run` prints its message as its one line: SQLite's text, not an object's dump.
      expect(refusal).toMatchObject({
        code,
        retriable: true,
        message: `The store writer thread could not start: ${text}`,
      })
      expect(errorFieldsOf(refusal)).toEqual({ error_code: code, sqlite_code: sqlite })
      expect(rt.logs.filter((l) => l.level === 'error')).toEqual([
        expect.objectContaining({
          error_code: code,
          sqlite_code: sqlite,
          err: text,
          retry_in_ms: expect.any(Number),
          msg: expect.stringMatching(/a write starts it again once retry_in_ms has passed/),
        }),
      ])
      expect(await storeErrors(rt, { error_code: code, stage: 'thread' })).toBe(1)
    },
  )
})

describe('kill -9 during the build', () => {
  it('leaves a store the next start opens, builds and writes', async () => {
    const dataDir = await earlierStore(0)
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }))
    // Enough outcomes that the build lasts past the kill (about 6 s per million).
    const db = new Database(join(dataDir, 'store.sqlite'))
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 199999)
      INSERT INTO revoke_outcomes (id, decision_id, incident_id, agent_id, status, time, record)
      SELECT 'rvk_held_' || i || ':0', 'rvk_held_' || i, 'inc-' || (i % 500), 'data-cleaner', 'suppressed',
        ${Date.UTC(2026, 10, 25, 16, 2)} + i, '{}' FROM n`)
    db.close()
    const child = fileURLToPath(new URL('./store-index-build-child.ts', import.meta.url))
    const proc = spawn(process.execPath, ['--import', 'tsx', child, dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    proc.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    const exited = new Promise((resolve) => proc.on('exit', resolve))
    try {
      await waitFor(() => stdout.includes('building') || proc.exitCode !== null, {
        timeoutMs: 30_000,
        what: 'the child to start the build',
      })
    } finally {
      proc.kill('SIGKILL')
      await exited
    }
    expect(stdout, stderr).toBe('building\n')
    expect(proc.signalCode).toBe('SIGKILL')
    // Nothing of the build was committed: no index, half built or whole.
    expect(hasIndex(dataDir)).toBe(false)

    const rt = createTestRuntime()
    const writer = await startStoreWriterThread({ data_dir: dataDir }, { metrics: rt.metrics, log: rt.log })
    cleanup.push(() => writer.close())
    // The first write waits for the build, then is stored.
    expect(await writer.writeCorrelations([makeCorrelation(10)])).toMatchObject({ stored: 1 })
    expect(await writer.writeOutcomes([heldBack(200_000)])).toMatchObject({ stored: 1 })
    expect(hasIndex(dataDir)).toBe(true)
    expect(rt.logs.filter((l) => l.index === index).map((l) => [l.level, l.msg])).toEqual([
      ['info', expect.stringMatching(/^Building an index this version needs/)],
      ['info', "Built the index; the store's writes go on."],
    ])
    const reader = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
    expect(reader.prepare('SELECT count(*) AS n FROM revoke_outcomes').get()).toEqual({ n: 200_001 })
    expect(reader.pragma('integrity_check', { simple: true })).toBe('ok')
    reader.close()
  })
})
