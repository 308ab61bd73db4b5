// What a read stopped at its time limit costs, and what the stepped reads cost a normal page, at 1,000,000
// correlations (BENCH_READ_CORRELATIONS; the store of read-stall). Six reads whose filter matches nothing
// (`rule=nothing-<i>&limit=1000`, every correlation read) are asked one after another of a reader thread
// with a 20 ms time limit, as a read-token holder could; then a page of one. Printed: the process's CPU
// from the first read until that page is answered (every thread: stopped reads that go on scanning count),
// that wall time, and the `nerve-reader` threads alive after the six and after the page. Then a normal
// page (`/v1/correlations`, 100 and its total; an agent's page) read in place, median of 5. With
// BENCH_READ_BASE=<checkout of an earlier commit> the same figures for its code, alternated with these.
import { readdirSync, readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { createCorrelationStore } from '../sinks/correlation-store.ts'
import type { answerStoreRead as AnswerStoreRead } from '../sinks/store-api.ts'
import type { startStoreReaderThread as StartReader } from '../sinks/store-reader-thread.ts'
import type { createStoreReads as CreateReads } from '../sinks/store-reads.ts'
import { tempDir } from '../tests/helpers/random-names.ts'
import { correlation } from './read-stall.bench.ts'

const correlations = Number(process.env.BENCH_READ_CORRELATIONS ?? 1_000_000)

type Code = {
  label: string
  start: typeof StartReader
  reads: typeof CreateReads
  answer: typeof AnswerStoreRead
}

async function codeAt(label: string, root: string): Promise<Code> {
  const { startStoreReaderThread } = await import(join(root, 'sinks/store-reader-thread.ts'))
  const { createStoreReads } = await import(join(root, 'sinks/store-reads.ts'))
  const { answerStoreRead } = await import(join(root, 'sinks/store-api.ts'))
  return { label, start: startStoreReaderThread, reads: createStoreReads, answer: answerStoreRead }
}

const readerThreads = () =>
  readdirSync('/proc/self/task').filter((t) => {
    try {
      return readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === 'nerve-reader'
    } catch {
      return false
    }
  }).length

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN

async function stoppedReads(code: Code, dir: string): Promise<string> {
  const reader = await code.start({ data_dir: dir }, { timeLimitMs: 20 })
  const route = reader.routes.find((r) => r.url === '/v1/correlations')
  if (!route) throw new Error('no /v1/correlations route')
  const ask = (query: Record<string, string>) =>
    route.handle({ body: Buffer.alloc(0), headers: {}, query, receivedAt: 0 })
  const cpu = process.cpuUsage()
  const started = performance.now()
  const codes: string[] = []
  for (let i = 0; i < 6; i++)
    codes.push(
      await ask({ rule: `nothing-${i}`, limit: '1000' }).then(
        () => '200',
        (e) => e.code,
      ),
    )
  const afterSix = readerThreads()
  // The newest ten: a page that is quick whatever the store, asked until the thread answers it in time.
  const since = String(Date.UTC(2026, 10, 25, 16) + (correlations - 10) * 1000)
  while ((await ask({ limit: '1', since }).catch(() => undefined)) === undefined);
  const freeMs = performance.now() - started
  const used = process.cpuUsage(cpu)
  const afterPage = readerThreads()
  const closing = performance.now()
  await reader.close()
  const closeMs = performance.now() - closing
  return `${code.label}: six stopped reads (${[...new Set(codes)].join(',')}) and a page: ${((used.user + used.system) / 1000).toFixed(0)} ms CPU, ${freeMs.toFixed(0)} ms until the page; nerve-reader threads after the six ${afterSix}, after the page ${afterPage}; close ${closeMs.toFixed(0)} ms`
}

function normalPages(code: Code, dir: string): string {
  const db = new Database(join(dir, 'store.sqlite'), { readonly: true })
  const reads = code.reads(db)
  const time = (query: Record<string, string>) => {
    const ms: number[] = []
    for (let i = 0; i < 5; i++) {
      const t = performance.now()
      code.answer(reads, '/v1/correlations', { query })
      ms.push(performance.now() - t)
    }
    return median(ms).toFixed(1)
  }
  const first = time({})
  const agent = time({ agent: 'agent-7' })
  db.close()
  return `${code.label}: page of 100 and its total ${first} ms; agent-7's ${agent} ms`
}

export default async function benchReadStop(): Promise<void> {
  const dir = tempDir('nerve-bench-read-stop')
  const store = createCorrelationStore(
    { data_dir: dir },
    { metrics: (await import('../runtime/metrics.ts')).createMetrics() },
  )
  for (let from = 0; from < correlations; from += 1000) {
    const batch = []
    for (let n = from; n < Math.min(correlations, from + 1000); n++) batch.push(correlation(n))
    store.writeCorrelations(batch)
  }
  await store.sync()
  await store.close()
  const codes = [await codeAt('now', join(import.meta.dirname, '..'))]
  if (process.env.BENCH_READ_BASE) codes.push(await codeAt('base', process.env.BENCH_READ_BASE))
  process.stdout.write(`read-stop ${correlations.toLocaleString('en')} correlations\n`)
  for (let round = 0; round < Number(process.env.BENCH_READ_ROUNDS ?? 3); round++) {
    for (const code of round % 2 ? [...codes].reverse() : codes) {
      process.stdout.write(`  ${normalPages(code, dir)} (load ${loadavg()[0]?.toFixed(1)})\n`)
      process.stdout.write(`  ${await stoppedReads(code, dir)} (load ${loadavg()[0]?.toFixed(1)})\n`)
    }
  }
}
