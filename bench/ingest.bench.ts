// Ingest throughput beside a bare node:http server that only parses the JSON and answers 202.
// Each server runs in a worker thread (its own event loop and core); the load comes from this thread over
// keep-alive connections. Two figures, each as a ratio to the bare server:
//   single: one real Falco alert per POST /v1/falco (Falcosidekick's way), requests/s  (target ≥ 0.6 of bare)
//   batch:  NDJSON bodies of 1,000 real alerts,                         events/s    (target ≥ 200,000)
import { readFileSync } from 'node:fs'
import { Agent, createServer, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'

type Mode = 'bare' | 'nerve'
const token = 'nrv_bench-token-0123456789abcdef'
const seconds = 2
const warmupSeconds = 0.5

const alerts = readFileSync(join(import.meta.dirname, '../tests/fixtures/falco/falco-website.ndjson'), 'utf8')
  .trim()
  .split('\n')
const single = alerts[19] as string
const batchSize = 1000
const batch = Array.from({ length: batchSize }, (_, i) => alerts[i % alerts.length]).join('\n')

if (!isMainThread) await serve(workerData.mode as Mode)

export default async function benchIngest(): Promise<void> {
  const results = {
    single: { bare: 0, nerve: 0 },
    batch: { bare: 0, nerve: 0 },
  }
  // The machine is shared: alternate the two servers and keep each one's best round.
  for (let round = 0; round < 2; round++) {
    for (const mode of ['bare', 'nerve'] as const) {
      const { port, stop } = await startWorker(mode)
      results.single[mode] = Math.max(results.single[mode], await load(port, single, 8, 1))
      results.batch[mode] = Math.max(results.batch[mode], await load(port, batch, 2, batchSize))
      await stop()
    }
  }
  const line = (name: 'single' | 'batch', unit: string, target: string) => {
    const { bare, nerve } = results[name]
    const ratio = nerve / bare
    process.stdout.write(
      `${name.padEnd(7)} nerve ${fmt(nerve)} ${unit}  bare ${fmt(bare)} ${unit}  ratio ${ratio.toFixed(2)}  (${target})\n`,
    )
  }
  await cpuPerEvent()
  line('single', 'requests/s', 'target ratio ≥ 0.60')
  line(
    'batch',
    'events/s',
    `target ≥ 200,000 events/s: ${results.batch.nerve >= 200_000 ? 'met' : 'not met'}`,
  )
}

const fmt = (n: number) => Math.round(n).toLocaleString('en').padStart(9)

/**
 * CPU time (not wall time: robust on a shared machine) to decode one alert of the batch, from text to an
 * identified NormalizedEvent, beside JSON.parse of the same line.
 */
async function cpuPerEvent(): Promise<void> {
  const { createEventDecoder } = await import('../ingest/decode-events.ts')
  const { splitJsonItems } = await import('../ingest/split-json-items.ts')
  const decoder = createEventDecoder({ agents: [], revoke: { self_identities: [] } })
  const lines = batch.split('\n')
  const cpu = (work: () => void, rounds: number) => {
    // Steady state, as in a running server: a single warm-up round left part of the JIT work in the figure.
    for (let i = 0; i < 5; i++) work()
    const start = process.cpuUsage()
    for (let i = 0; i < rounds; i++) work()
    const used = process.cpuUsage(start)
    return (used.user + used.system) / rounds / batchSize
  }
  const limits = { maxItems: batchSize, maxDepth: 64 }
  const decode = cpu(() => decoder.decode('falco', splitJsonItems(batch, limits), { receivedAt: 0 }), 20)
  const parse = cpu(() => {
    for (const l of lines) JSON.parse(l)
  }, 20)
  process.stdout.write(
    `decode  ${decode.toFixed(1)} µs CPU per alert (split, validate, normalize, identify)  JSON.parse ${parse.toFixed(1)} µs  ratio ${(parse / decode).toFixed(2)}\n`,
  )
}

/** Closed-loop load: `connections` keep-alive connections, each posting `body` again as soon as answered. */
async function load(
  port: number,
  body: string,
  connections: number,
  eventsPerRequest: number,
): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections })
  const payload = Buffer.from(body)
  const post = () =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v1/falco',
          agent,
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            'content-length': payload.length,
          },
        },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode ?? 0))
        },
      )
      req.on('error', reject)
      req.end(payload)
    })
  const run = async (durationMs: number) => {
    let done = 0
    const deadline = performance.now() + durationMs
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < deadline) {
          const status = await post()
          if (status !== 202) throw new Error(`Unexpected status ${status}.`)
          done++
        }
      }),
    )
    return done
  }
  await run(warmupSeconds * 1000)
  const started = performance.now()
  const requests = await run(seconds * 1000)
  agent.destroy()
  return (requests * eventsPerRequest) / ((performance.now() - started) / 1000)
}

async function startWorker(mode: Mode): Promise<{ port: number; stop(): Promise<void> }> {
  // Workers do not inherit the tsx loader: register it, then load this file as the worker.
  const code = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}) })`
  const worker = new Worker(code, { eval: true, workerData: { mode } })
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  return { port, stop: () => worker.terminate().then(() => undefined) }
}

async function serve(mode: Mode): Promise<void> {
  const port = mode === 'bare' ? await serveBare() : await serveNerve()
  parentPort?.postMessage(port)
}

/** The baseline: read the body, JSON.parse each line, answer 202. */
function serveBare(): Promise<number> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const lines = Buffer.concat(chunks).toString('utf8').split('\n')
      for (const l of lines) JSON.parse(l)
      res.writeHead(202, { 'content-type': 'application/json' })
      res.end(`{"accepted":${lines.length}}`)
    })
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  )
}

/** nerve's ingest on the real HTTP server with a bus whose publish resolves at once (bus cost excluded). */
async function serveNerve(): Promise<number> {
  const { loadConfig } = await import('../runtime/load-config.ts')
  const { createHttpServer } = await import('../runtime/http-server.ts')
  const { createMetrics } = await import('../runtime/metrics.ts')
  const { createSilentLogger } = await import('../runtime/logger.ts')
  const { startIngest } = await import('../ingest/start-ingest.ts')
  const config = loadConfig({ env: { NERVE_DATA_DIR: join(tmpdir(), `nerve-bench-${process.pid}`) } })
  const log = createSilentLogger()
  const metrics = createMetrics()
  const bus = {
    publish: async () => {},
    subscribe: async () => ({ stop: async () => {} }),
    partitionsOf: () => 1,
    close: async () => {},
  }
  const ingest = await startIngest(config, { bus, log, metrics, now: Date.now })
  const server = createHttpServer({ ...config.http, port: 0 }, { log, metrics, ingestToken: token })
  server.addRoutes(ingest.routes)
  const address = await server.listen()
  return Number(new URL(address).port)
}
