// The Elasticsearch sink's own cost, without a cluster:
// 1. ECS documents built per second (edge event, core event, correlation), beside JSON.stringify of the same
//    value: the ratio is what ECS shaping costs over shipping the value as it is.
// 2. writeBatch over loopback HTTP to a loopback fake Elasticsearch that answers every bulk item 201, beside the client's own
//    client.bulk with the same documents pre-built: the ratio is the indexer's overhead per request.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Client } from '@elastic/elasticsearch'
import { createSilentLogger } from '../runtime/logger.ts'
import { createMetrics } from '../runtime/metrics.ts'
import { buildCorrelationDocument } from '../sinks/ecs-correlation-document.ts'
import { buildEventDocument } from '../sinks/ecs-event-document.ts'
import { createElasticsearchIndexer, type IndexItem } from '../sinks/elasticsearch-indexer.ts'
import { attachRolePolicy, correlation, shellInContainer } from '../tests/unit/sinks/ecs-sample-events.ts'

const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(10)

/** Best of three rounds: the machine is shared, the best round is the least disturbed one. */
function perSecond(count: number, run: () => void): number {
  let best = 0
  for (let round = 0; round < 3; round++) {
    const start = performance.now()
    for (let i = 0; i < count; i++) run()
    best = Math.max(best, (count / (performance.now() - start)) * 1000)
  }
  return best
}

function buildRates(): void {
  const count = 10_000
  const cases: [string, () => unknown, unknown][] = [
    [
      'edge event (Falco)',
      () => buildEventDocument(shellInContainer, 'default', Date.now()),
      shellInContainer,
    ],
    [
      'core event (CloudTrail)',
      () => buildEventDocument(attachRolePolicy, 'default', Date.now()),
      attachRolePolicy,
    ],
    ['correlation', () => buildCorrelationDocument(correlation, 'default', Date.now()), correlation],
  ]
  for (const [what, build, value] of cases) {
    const built = perSecond(count, () => JSON.stringify(build()))
    const plain = perSecond(count, () => JSON.stringify(value))
    const ratio = (plain / built).toFixed(2)
    process.stdout.write(
      `${what.padEnd(26)} build+stringify ${fmt(built)} docs/s   ` +
        `stringify alone ${fmt(plain)} /s   ratio ${ratio}\n`,
    )
  }
}

async function startFakeElasticsearch(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    let lines = 0
    req.on('data', (chunk: Buffer) => {
      for (const byte of chunk) if (byte === 10) lines++
    })
    req.on('end', () => {
      const item = '{"create":{"status":201}}'
      res.writeHead(200, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' })
      res.end(`{"errors":false,"items":[${Array.from({ length: lines / 2 }, () => item).join(',')}]}`)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

async function indexRates(): Promise<void> {
  const fake = await startFakeElasticsearch()
  const batches = 10
  const size = 500
  const batch = (b: number): IndexItem[] =>
    Array.from({ length: size }, (_, i) => ({
      topic: 'events',
      value: { ...shellInContainer, id: `${shellInContainer.id}-${b}-${i}` },
    }))
  const config = { url: fake.url, namespace: 'bench', index_events: true, max_retries: 3 }
  const client = new Client({ node: fake.url, maxRetries: 0, compression: false })
  const indexer = createElasticsearchIndexer(config, {
    log: createSilentLogger(),
    metrics: createMetrics(),
    client,
  })
  const prebuilt = Array.from({ length: batches }, (_, b) =>
    batch(b).flatMap((item) => [
      { create: { _index: 'logs-nerve.events-bench', _id: item.value.id } },
      buildEventDocument(item.value as typeof shellInContainer, 'bench', Date.now()),
    ]),
  )
  await indexer.writeBatch(batch(-1))

  let viaIndexer = 0
  let raw = 0
  for (let round = 0; round < 3; round++) {
    let start = performance.now()
    for (let b = 0; b < batches; b++) await indexer.writeBatch(batch(b))
    viaIndexer = Math.max(viaIndexer, ((batches * size) / (performance.now() - start)) * 1000)
    start = performance.now()
    for (const operations of prebuilt) await client.bulk({ operations })
    raw = Math.max(raw, ((batches * size) / (performance.now() - start)) * 1000)
  }

  const ratio = (raw / viaIndexer).toFixed(2)
  process.stdout.write(
    `writeBatch, ${size}/batch (build + bulk) ${fmt(viaIndexer)} docs/s   ` +
      `client.bulk, prebuilt ${fmt(raw)} docs/s   ratio ${ratio}\n`,
  )
  await indexer.close()
  await client.close()
  await fake.close()
}

export default async function run(): Promise<void> {
  buildRates()
  await indexRates()
}
