// The embedded bus's durable publish and consume rates (records/s, ~1 KiB JSON records) beside the raw
// rate of better-sqlite3 doing the same writes, as durably (WAL, synchronous=FULL, exclusive lock), in the
// same transaction sizes, without the bus: a plain table, JSON.stringify per record, one transaction per
// batch. The bus itself runs synchronous=NORMAL and fdatasyncs the WAL off the event loop before a publish
// resolves (the same durability, without blocking the loop). The ratio (bus / raw) is what the bus costs.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { BusRecord, Topic } from '../bus/bus.ts'
import { createEmbeddedBus, type EmbeddedBus } from '../bus/embedded-bus.ts'
import { createSilentLogger } from '../runtime/logger.ts'
import { createMetrics } from '../runtime/metrics.ts'

type Value = { seq: number; agent: string; pad: string }

const pad = 'x'.repeat(980)
const makeRecords = (count: number, from = 0): BusRecord<Value>[] =>
  Array.from({ length: count }, (_, i) => {
    const agent = `agent-${(from + i) % 50}`
    return { key: agent, value: { seq: from + i, agent, pad } }
  })

const perSecond = (count: number, ms: number) => Math.round((count / ms) * 1000)
const fmt = (n: number) => n.toLocaleString('en-US').padStart(9)

function row(what: string, bus: number, raw: number) {
  const ratio = (bus / raw).toFixed(2)
  process.stdout.write(
    `${what.padEnd(46)} bus ${fmt(bus)} rec/s   raw ${fmt(raw)} rec/s   bus/raw ${ratio}\n`,
  )
}

async function timed(run: () => Promise<void> | void): Promise<number> {
  const start = performance.now()
  await run()
  return performance.now() - start
}

function openRaw(dir: string) {
  const db = new Database(join(dir, 'raw.sqlite'), { timeout: 0 })
  db.pragma('locking_mode = EXCLUSIVE')
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec(`CREATE TABLE records (id INTEGER PRIMARY KEY, key TEXT NOT NULL, value TEXT NOT NULL);
           CREATE TABLE offsets (id INTEGER PRIMARY KEY, next INTEGER NOT NULL);
           INSERT INTO offsets VALUES (1, 0);`)
  const insert = db.prepare<[string, string]>('INSERT INTO records (key, value) VALUES (?, ?)')
  const write = db.transaction((records: readonly BusRecord<Value>[]) => {
    for (const r of records) insert.run(r.key, JSON.stringify(r.value))
  })
  const read = db.prepare<[number, number], { id: number; key: string; value: string }>(
    'SELECT id, key, value FROM records WHERE id > ? ORDER BY id LIMIT ?',
  )
  const commit = db.prepare<[number]>('UPDATE offsets SET next = ? WHERE id = 1')
  const consume = (count: number, batchSize: number) => {
    let last = 0
    while (last < count) {
      const rows = read.all(last, Math.min(batchSize, count - last))
      if (rows.length === 0) return
      for (const r of rows) JSON.parse(r.value)
      last = rows.at(-1)?.id ?? last
      commit.run(last)
    }
  }
  return { write, consume, close: () => db.close() }
}

const chunks = <T>(items: readonly T[], parts: number): T[][] => {
  const size = Math.ceil(items.length / parts)
  return Array.from({ length: parts }, (_, i) => items.slice(i * size, i * size + size))
}

/** Runs bus and raw on alternate chunks (bus first, then raw first) so disk noise hits both alike. */
async function alternate<T>(
  parts: readonly T[],
  onBus: (part: T) => Promise<void>,
  onRaw: (part: T) => void,
): Promise<{ bus: number; raw: number }> {
  const total = { bus: 0, raw: 0 }
  for (const [i, part] of parts.entries()) {
    const runBus = async () => {
      total.bus += await timed(() => onBus(part))
    }
    const runRaw = async () => {
      total.raw += await timed(() => onRaw(part))
    }
    if (i % 2 === 0) await runBus().then(runRaw)
    else await runRaw().then(runBus)
  }
  return total
}

async function consumeAll(bus: EmbeddedBus, topic: Topic<Value>, count: number): Promise<number> {
  let handled = 0
  let done = () => {}
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  const start = performance.now()
  const sub = await bus.subscribe(topic, 'bench', async (batch) => {
    handled += batch.length
    if (handled >= count) done()
  })
  await finished
  const ms = performance.now() - start
  await sub.stop()
  return ms
}

export default async function embeddedBusBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nerve-bench-'))
  const bus = createEmbeddedBus(
    { dataDir: join(dir, 'bus'), partitions: 4, retentionMs: 86_400_000, maxBatch: 500 },
    { log: createSilentLogger(), metrics: createMetrics() },
  )
  const raw = openRaw(dir)
  const bytes = JSON.stringify(makeRecords(1)[0]?.value).length
  process.stdout.write(
    `records of ${bytes} bytes of JSON; every publish durable before it resolves (raw: synchronous=FULL; bus: WAL fdatasync off the loop)\n`,
  )
  try {
    const batched = 20_000
    const topic: Topic<Value> = { name: 'bench.batched' }
    const all = makeRecords(batched)
    const batches = Array.from({ length: batched / 100 }, (_, i) => all.slice(i * 100, i * 100 + 100))
    const batchTimes = await alternate(
      chunks(batches, 5),
      async (part) => {
        for (const b of part) await bus.publish(topic, b)
      },
      (part) => {
        for (const b of part) raw.write(b)
      },
    )
    row('publish, batches of 100', perSecond(batched, batchTimes.bus), perSecond(batched, batchTimes.raw))

    const singles = 1_000
    const single: Topic<Value> = { name: 'bench.single' }
    const singleTimes = await alternate(
      chunks(makeRecords(singles, batched), 5),
      async (part) => {
        for (const r of part) await bus.publish(single, [r])
      },
      (part) => {
        for (const r of part) raw.write([r])
      },
    )
    const rawSingle = perSecond(singles, singleTimes.raw)
    row('publish, 1 record, one at a time', perSecond(singles, singleTimes.bus), rawSingle)

    const concurrent = 5_000
    const many = makeRecords(concurrent, batched + singles)
    const busConcurrentMs = await timed(async () => {
      for (let i = 0; i < concurrent; i += 100) {
        await Promise.all(many.slice(i, i + 100).map((r) => bus.publish(single, [r])))
      }
    })
    row('publish, 1 record, 100 concurrent (vs raw 1)', perSecond(concurrent, busConcurrentMs), rawSingle)

    const busConsumeMs = await consumeAll(bus, topic, batched)
    const rawConsumeMs = await timed(() => raw.consume(batched, 500))
    row(
      'consume + commit, batches of 500',
      perSecond(batched, busConsumeMs),
      perSecond(batched, rawConsumeMs),
    )
  } finally {
    await bus.close()
    raw.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
