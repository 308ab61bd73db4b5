// How long `nerve run` holds its event loop while large Firehose deliveries come in (issue 17 row 5: at
// most 50 ms): /healthz is asked again and again (one request at a time, keep-alive) while three deliveries
// of about 16 MiB each (Firehose's buffers reach 64 MiB) are posted at once to POST /v1/cloudtrail/firehose
// by another process. Each record is one CloudTrail record, as Firehose sends them with decompression and
// message extraction on (gzipped CloudWatch Logs payloads of 16 MiB would decode past
// decompressed_limit_bytes); every record is a distinct event. The deliveries are read, decoded, published
// and answered 200 as usual (checked). The figure is the slowest /healthz answer of a round, worst of 3.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../tests/helpers/random-names.ts'
import { slowestHealthzWhilePosting } from './healthz-while-posting.ts'

const rounds = Number(process.env.BENCH_STALL_ROUNDS ?? 3)
const deliveries = 3
const deliveryBytes = 16 * 1024 * 1024

const trail = readFileSync(
  join(import.meta.dirname, '../tests/fixtures/cloudtrail/stratus-red-team-detonation-logs.ndjson'),
  'utf8',
)
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as Record<string, unknown>)

/** About `bytes` of delivery; record i is CloudTrail record `first + i` (its own event id). */
export function delivery(first: number, bytes: number): { text: string; records: number } {
  const records: string[] = []
  let size = 0
  for (let i = 0; size < bytes; i++) {
    const n = first + i
    const event = {
      ...trail[n % trail.length],
      eventID: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    }
    const data = Buffer.from(JSON.stringify(event)).toString('base64')
    records.push(`{"data":"${data}"}`)
    size += data.length + 12
  }
  const requestId = `bench-firehose-${first}`
  return {
    text: `{"requestId":"${requestId}","timestamp":${Date.now()},"records":[${records.join(',')}]}`,
    records: records.length,
  }
}

export default async function benchFirehoseStall(): Promise<void> {
  const dir = tempDir('nerve-bench-firehose-stall')
  const files: string[] = []
  let perDelivery = 0
  for (let d = 0; d < deliveries; d++) {
    const { text, records } = delivery(d * 1_000_000, deliveryBytes)
    perDelivery = records
    files.push(join(dir, `delivery-${d}.json`))
    writeFileSync(files[d] as string, text)
  }
  const worst = await slowestHealthzWhilePosting({
    dir,
    files,
    path: '/v1/cloudtrail/firehose',
    contentType: 'application/json',
    status: 200,
    rounds,
  })
  const max = Math.max(...worst)
  process.stdout.write(
    `firehose slowest /healthz answer while ${deliveries} Firehose deliveries of ${perDelivery.toLocaleString('en')} records (16 MiB each) are posted at once: ` +
      `${worst.map((ms) => ms.toFixed(0)).join(', ')} ms  worst ${max.toFixed(0)} ms  (target ≤ 50 ms: ${max <= 50 ? 'met' : 'NOT met'})\n`,
  )
}
