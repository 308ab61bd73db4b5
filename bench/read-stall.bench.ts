// How long a read of the embedded store's API holds the main thread (the one that accepts ingest) at
// 1,000,000 correlations (BENCH_READ_CORRELATIONS), with filters no index serves: `rule`, `min_score` and
// `status` read every correlation. The store is built through its own write path (100 agents, 3 rules,
// 10,000 correlations per incident). Each read is timed in place (the store's reads on this thread, as
// `nerve run` served them before: the whole read is one stretch of the loop), then through the reader
// thread (store-reader-thread.ts): the main thread's CPU during the read (schedstat), and the loop's longest
// delay from perf_hooks.monitorEventLoopDelay. Goal: no read holds the loop over 50 ms.
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import Database from 'better-sqlite3'
import { createHttpServer } from '../runtime/http-server.ts'
import { loadConfig } from '../runtime/load-config.ts'
import { createMetrics } from '../runtime/metrics.ts'
import type { Correlation } from '../schemas/types.ts'
import { createCorrelationStore } from '../sinks/correlation-store.ts'
import { answerStoreRead, type StoreReadUrl } from '../sinks/store-api.ts'
import { startStoreReaderThread } from '../sinks/store-reader-thread.ts'
import { createStoreReads } from '../sinks/store-reads.ts'
import { tempDir } from '../tests/helpers/random-names.ts'
import { createTestRuntime } from '../tests/helpers/test-runtime.ts'
import { makeCorrelation } from '../tests/unit/sinks/correlation-fixture.ts'

const correlations = Number(process.env.BENCH_READ_CORRELATIONS ?? 1_000_000)
const targetMs = 50
const rules = ['outbound-then-iam-write', 'shell-then-secrets', 'shell-then-iam-privilege-change']

/** Correlation n: agent n % 100, rule n % 3, score n % 90 (none reaches 99), 10,000 per incident. */
export function correlation(n: number): Correlation {
  const c = makeCorrelation(n)
  const agent = `agent-${n % 100}`
  return {
    ...c,
    rule: { ...c.rule, id: rules[n % 3] as string },
    agent: { ...c.agent, id: agent },
    score: n % 90,
    incident: { id: `inc-${agent}-${Math.floor(n / 10_000)}` },
  }
}

/** The reads: a filter that matches nothing reads every correlation; the rest read a page of 1,000. */
const reads: [label: string, url: StoreReadUrl, query: Record<string, string>][] = [
  ['rule=nope', '/v1/correlations', { rule: 'nope' }],
  ['min_score=99', '/v1/correlations', { min_score: '99' }],
  ['status=sent', '/v1/correlations', { status: 'sent' }],
  ['limit=1000 (and its total)', '/v1/correlations', { limit: '1000' }],
  ['incidents rule=nope', '/v1/incidents', { rule: 'nope' }],
]

/** ns the calling thread spent on a CPU and waiting for one (Linux: /proc/thread-self/schedstat). */
export function schedstat(): { onCpu: number; waited: number } | undefined {
  try {
    const [onCpu, waited] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number)
    return { onCpu: onCpu ?? 0, waited: waited ?? 0 }
  } catch {
    return undefined
  }
}

/** The loop's longest delay over `ms` with nothing to do: what the machine's load alone costs it. */
async function idleLoopDelay(ms: number): Promise<number> {
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  await new Promise((resolve) => setTimeout(resolve, ms))
  delay.disable()
  return delay.max / 1e6
}

export default async function benchReadStall(): Promise<void> {
  const dir = tempDir('nerve-bench-read')
  const started = performance.now()
  const store = createCorrelationStore({ data_dir: dir }, { metrics: createMetrics() })
  for (let from = 0; from < correlations; from += 1000) {
    const batch: Correlation[] = []
    for (let n = from; n < Math.min(correlations, from + 1000); n++) batch.push(correlation(n))
    store.writeCorrelations(batch)
  }
  await store.sync()
  await store.close()
  process.stdout.write(
    `read-stall ${correlations.toLocaleString('en')} correlations (built in ${((performance.now() - started) / 1000).toFixed(0)} s)\n`,
  )
  await measureReads(dir)
}

/**
 * Each read in place, then twice through the reader thread: what the main thread spent on a CPU during the
 * read (its longest stretch is at most that), then the loop's longest delay during the same read, which on a
 * loaded machine also counts the time the thread waited for a core (shown beside that delay with no read).
 */
export async function measureReads(dir: string): Promise<void> {
  const db = new Database(join(dir, 'store.sqlite'), { readonly: true })
  const inPlace = createStoreReads(db)
  const reader = await startStoreReaderThread({ data_dir: dir })
  const rt = createTestRuntime()
  const server = createHttpServer(loadConfig().http, { log: rt.log, metrics: rt.metrics, ingestToken: 'x' })
  server.addRoutes(reader.routes)
  const idle = await idleLoopDelay(3000)
  process.stdout.write(
    `read-stall main thread per read (target ≤ ${targetMs} ms); loop delay with no read over 3 s: ${idle.toFixed(0)} ms (load ${loadavg()[0]?.toFixed(1)})\n`,
  )
  let worst = 0
  for (const [label, url, query] of reads) {
    const before = performance.now()
    answerStoreRead(inPlace, url, { query })
    const inPlaceMs = performance.now() - before
    const get = async () => {
      const res = await server.inject({ method: 'GET', url: `${url}?${new URLSearchParams(query)}` })
      if (res.statusCode !== 200) throw new Error(`${label}: ${res.statusCode} ${res.body.slice(0, 200)}`)
    }
    // Twice: the delay monitor wakes the loop every millisecond, which costs the main thread CPU of its own.
    const sched = schedstat()
    const start = performance.now()
    await get()
    const readMs = performance.now() - start
    const after = schedstat()
    const delay = monitorEventLoopDelay({ resolution: 1 })
    delay.enable()
    await get()
    delay.disable()
    const onCpu = sched && after ? (after.onCpu - sched.onCpu) / 1e6 : Number.NaN
    worst = Math.max(worst, onCpu)
    process.stdout.write(
      `  ${label.padEnd(28)} in place ${inPlaceMs.toFixed(0).padStart(6)} ms | reader thread: main on CPU ${onCpu.toFixed(1).padStart(5)} ms, loop delay ${(delay.max / 1e6).toFixed(0).padStart(3)} ms (the read took ${readMs.toFixed(0)} ms)\n`,
    )
  }
  process.stdout.write(
    `read-stall worst main-thread CPU of a read through the reader thread: ${worst.toFixed(1)} ms (target ≤ ${targetMs} ms: ${worst <= targetMs ? 'met' : 'NOT met'})\n`,
  )
  await server.close()
  await reader.close()
  db.close()
}
