// How long a read of GET /v1/dead-letters or /v1/late-events holds the main thread (the one that accepts
// ingest) at a full rejected store: 100,000 dead letters whose originals are 16 KiB (the most kept) and
// 100,000 late events of about 16 KiB (BENCH_REJECTED_ROWS), both the watched agent's to fill. Each read is
// asked over loopback from a client thread, in alternated pairs (BENCH_REJECTED_ROUNDS): from a server
// answering in place (the reads and their JSON on this thread, as `nerve run` served them before), then from
// one answering through the reader thread (store-reader-thread.ts). Figure: the main thread's CPU from the
// request to the client's last byte (schedstat), which bounds its longest stretch. Goal: at most 50 ms.
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import Database from 'better-sqlite3'
import type { DeadLetter, LateEvent } from '../bus/topics.ts'
import type { Route } from '../runtime/http-routes.ts'
import { createHttpServer } from '../runtime/http-server.ts'
import { loadConfig } from '../runtime/load-config.ts'
import { createMetrics } from '../runtime/metrics.ts'
import { readRoute } from '../runtime/read-route.ts'
import { createCorrelationStore } from '../sinks/correlation-store.ts'
import {
  answerRejectedRead,
  createRejectedReads,
  type RejectedReadUrl,
  rejectedReadUrls,
} from '../sinks/rejected-reads.ts'
import { createRejectedStore, maxOriginalChars, maxRowsPerTable } from '../sinks/rejected-store.ts'
import { startStoreReaderThread } from '../sinks/store-reader-thread.ts'
import { tempDir } from '../tests/helpers/random-names.ts'
import { createTestRuntime } from '../tests/helpers/test-runtime.ts'
import { edgeEvent } from '../tests/unit/correlate/sample-events.ts'
import { schedstat } from './read-stall.bench.ts'

const rows = Number(process.env.BENCH_REJECTED_ROWS ?? maxRowsPerTable)
const targetMs = 50
const t0 = Date.UTC(2026, 10, 25, 16, 0, 0)
/** A malformed Falco alert as the agent can send it: as long as the store keeps (16 KiB). */
const filler = 'x'.repeat(maxOriginalChars)

function deadLetter(n: number): DeadLetter {
  return {
    component: n % 2 === 0 ? 'falco_receiver' : 'cloudtrail_receiver',
    error_code: 'INPUT_INVALID',
    reason: 'Item 0 is not a Falco alert.',
    problems: [{ path: '/priority', message: 'must be equal to one of the allowed values' }],
    index: n,
    received_at: t0 + n,
    original: `{"n":${n},"output":"${filler}"}`,
    original_encoding: 'utf8',
  }
}

/** A late event whose Falco output is as long as a stored one keeps uncut (its row: about 16 KiB). */
function lateEvent(n: number): LateEvent {
  const output = filler.slice(0, maxOriginalChars - 2000)
  return {
    event: edgeEvent({ id: `late-${n}`, time: t0 + n, agent: `default/agent-${n % 100}`, output }),
    stream_time: t0 + rows + 3_600_000,
    lag_ms: 1000,
    reason: 'edge event older than the stream time minus after and grace',
  }
}

/** A filter that matches nothing reads every row (and counts them); the others read a page and its total. */
const reads: [label: string, url: RejectedReadUrl, query: Record<string, string>][] = [
  ['dead letters first page', '/v1/dead-letters', {}],
  ['dead letters limit=1000', '/v1/dead-letters', { limit: '1000' }],
  ['dead letters component=nope', '/v1/dead-letters', { component: 'nope' }],
  ['dead letters since, limit=1000', '/v1/dead-letters', { since: String(t0 + rows / 2), limit: '1000' }],
  ['late events limit=1000', '/v1/late-events', { limit: '1000' }],
  ['late events agent=nope', '/v1/late-events', { agent: 'nope' }],
]

export default async function benchRejectedReadStall(): Promise<void> {
  const dir = tempDir('nerve-bench-rejected')
  const started = performance.now()
  const store = createRejectedStore({ data_dir: dir }, { metrics: createMetrics() })
  for (let from = 0; from < rows; from += 500) {
    const n = Array.from({ length: Math.min(500, rows - from) }, (_, i) => from + i)
    store.writeDeadLetters(n.map(deadLetter))
    store.writeLateEvents(n.map(lateEvent))
  }
  await store.sync()
  // The reader thread opens the correlation store too: an empty one.
  const correlations = createCorrelationStore({ data_dir: dir }, { metrics: createMetrics() })
  await correlations.close()
  process.stdout.write(
    `rejected-lists ${rows.toLocaleString('en')} dead letters and late events (built in ${((performance.now() - started) / 1000).toFixed(0)} s)\n`,
  )
  const db = new Database(join(dir, 'rejected.sqlite'), { readonly: true })
  const inPlace = createRejectedReads(db)
  const reader = await startStoreReaderThread({ data_dir: dir })
  // Two servers on loopback, as `nerve run` serves: the routes in place, and the reader thread's. The client
  // is a worker thread, so that the main thread's CPU is the server's alone (the answer's socket writes too).
  const serve = async (routes: Route[]) => {
    const rt = createTestRuntime()
    const config = loadConfig({ env: { NERVE_HTTP_HOST: '127.0.0.1', NERVE_HTTP_PORT: '0' } }).http
    const server = createHttpServer(config, { log: rt.log, metrics: rt.metrics, ingestToken: 'x' })
    server.addRoutes(routes)
    return { server, address: await server.listen() }
  }
  const before = await serve(
    rejectedReadUrls.map((url) => readRoute(url, (req) => answerRejectedRead(inPlace, url, req))),
  )
  const after = await serve(reader.routes)
  const client = new Worker(
    `const { parentPort } = require('node:worker_threads')
    parentPort.on('message', async (url) => {
      const res = await fetch(url)
      parentPort.postMessage({ status: res.status, bytes: (await res.arrayBuffer()).byteLength })
    })`,
    { eval: true },
  )
  /** GET through the client thread: the main thread's CPU from asking to the client's last byte. */
  const timedGet = (address: string, url: string, query: Record<string, string>) =>
    new Promise<{ ms: number; bytes: number }>((resolve, reject) => {
      const s0 = schedstat()
      client.once('message', (answer: { status: number; bytes: number }) => {
        const s1 = schedstat()
        if (answer.status !== 200) reject(new Error(`${url}: ${answer.status}`))
        resolve({ ms: s0 && s1 ? (s1.onCpu - s0.onCpu) / 1e6 : Number.NaN, bytes: answer.bytes })
      })
      client.postMessage(`${address}${url}?${new URLSearchParams(query)}`)
    })
  const rounds = Number(process.env.BENCH_REJECTED_ROUNDS ?? 5)
  process.stdout.write(
    `rejected-lists main thread per read, median of ${rounds} alternated pairs (target ≤ ${targetMs} ms; load ${loadavg()[0]?.toFixed(1)})\n`,
  )
  let worstBefore = 0
  let worstAfter = 0
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
  for (const [label, url, query] of reads) {
    const inPlaceMs: number[] = []
    const threadMs: number[] = []
    let bytes = 0
    for (let round = 0; round < rounds; round++) {
      inPlaceMs.push((await timedGet(before.address, url, query)).ms)
      const read = await timedGet(after.address, url, query)
      threadMs.push(read.ms)
      bytes = read.bytes
    }
    worstBefore = Math.max(worstBefore, median(inPlaceMs))
    worstAfter = Math.max(worstAfter, median(threadMs))
    process.stdout.write(
      `  ${label.padEnd(32)} ${(bytes / 1e6).toFixed(1).padStart(5)} MB  in place ${median(inPlaceMs).toFixed(0).padStart(5)} ms | reader thread ${median(threadMs).toFixed(1).padStart(5)} ms  (pairs: ${inPlaceMs.map((b, i) => `${b.toFixed(0)}/${threadMs[i]?.toFixed(0)}`).join(' ')})\n`,
    )
  }
  process.stdout.write(
    `rejected-lists worst median main-thread CPU: in place ${worstBefore.toFixed(0)} ms, reader thread ${worstAfter.toFixed(1)} ms (target ≤ ${targetMs} ms: ${worstAfter <= targetMs ? 'met' : 'NOT met'})\n`,
  )
  await client.terminate()
  await before.server.close()
  await after.server.close()
  await reader.close()
  db.close()
  await store.close()
}
