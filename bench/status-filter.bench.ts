// The `status` filter of /v1/correlations and /v1/incidents, checked on every row the scan walks: a page
// of 100 correlations (50 incidents) and its total, over BENCH_STATUS_CORRELATIONS correlations (100,000)
// in incidents of 20, half of them revoked (pending, then sent); and over one incident the watched agent
// flooded with BENCH_STATUS_FLOOD (20,000) held-back outcomes, 2,000 of its correlations. With
// BENCH_STATUS_BASE=<checkout of an earlier commit> the same reads with its code, alternated, on the same
// store. Printed: each read's median and all rounds, in ms, and the load average.
import { loadavg } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { createMetrics } from '../runtime/metrics.ts'
import type { RevokeOutcome } from '../schemas/types.ts'
import { createCorrelationStore } from '../sinks/correlation-store.ts'
import { tempDir } from '../tests/helpers/random-names.ts'
import { makeCorrelation } from '../tests/unit/sinks/correlation-fixture.ts'

const N = Number(process.env.BENCH_STATUS_CORRELATIONS ?? 100_000)
const FLOOD = Number(process.env.BENCH_STATUS_FLOOD ?? 20_000)
const rounds = Number(process.env.BENCH_STATUS_ROUNDS ?? 5)
const T = Date.UTC(2026, 10, 1)

const dir = tempDir('nerve-status-bench')
const store = createCorrelationStore({ data_dir: dir }, { metrics: createMetrics() })
for (let i = 0; i < N; i += 5000) {
  const batch = []
  for (let n = i; n < Math.min(N, i + 5000); n++) {
    const k = Math.floor(n / 20)
    const c = makeCorrelation(n, { incident: { id: `inc-${k}` } })
    batch.push({ ...c, agent: { ...c.agent, id: `agent-${k % 97}` } })
  }
  store.writeCorrelations(batch)
}
const outcome = (
  incident: string,
  id: string,
  status: RevokeOutcome['status'],
  time: number,
): RevokeOutcome => ({
  id,
  decision_id: id.slice(0, -2),
  time,
  correlation_id: 'c',
  incident_id: incident,
  agent_id: 'data-cleaner',
  status,
  reason: status === 'suppressed' ? 'rate_limited_agent' : 'policy_allowed',
  attempts: 0,
})
const outcomes: RevokeOutcome[] = []
for (let k = 0; k < N / 20; k += 2) {
  outcomes.push(outcome(`inc-${k}`, `rvk_${k}:0`, 'pending', T + k * 10))
  outcomes.push(outcome(`inc-${k}`, `rvk_${k}:1`, 'sent', T + k * 10 + 1))
}
const flooded = []
for (let n = 0; n < 2000; n++) {
  const c = makeCorrelation(N + n, { incident: { id: 'inc-flood' } })
  flooded.push({ ...c, agent: { ...c.agent, id: 'data-cleaner' } })
}
store.writeCorrelations(flooded)
outcomes.push(
  outcome('inc-flood', 'rvk_flood:0', 'pending', T),
  outcome('inc-flood', 'rvk_flood:1', 'sent', T + 1),
)
for (let n = 0; n < FLOOD; n++)
  outcomes.push(outcome('inc-flood', `rvk_held_${n}:0`, 'suppressed', T + 10 + n))
store.writeOutcomes(outcomes)
await store.close()

const db = new Database(join(dir, 'store.sqlite'), { readonly: true })
const sides = [['after', '..']]
if (process.env.BENCH_STATUS_BASE) sides.push(['before', process.env.BENCH_STATUS_BASE])
const code = await Promise.all(
  sides.map(async ([label, root]) => {
    const base = new URL(`${root}/`, import.meta.url)
    const { createStoreReads } = await import(new URL('sinks/store-reads.ts', base).href)
    const { answerStoreRead } = await import(new URL('sinks/store-api.ts', base).href)
    return { label, reads: createStoreReads(db), answer: answerStoreRead }
  }),
)
const urls: [string, Record<string, string>][] = [
  ['/v1/correlations', { status: 'failed', limit: '100' }],
  ['/v1/correlations', { status: 'sent', limit: '100' }],
  ['/v1/incidents', { status: 'failed', limit: '50' }],
  ['/v1/incidents', { status: 'sent', limit: '50' }],
  ['/v1/correlations', { agent: 'data-cleaner', status: 'suppressed', limit: '100' }],
]
const results: Record<string, number[]> = {}
for (let round = 0; round < rounds; round++)
  for (const side of round % 2 ? [...code].reverse() : code)
    for (const [url, query] of urls) {
      const t = performance.now()
      const res = db.transaction(() => side.answer(side.reads, url, { query, params: {} }))()
      const ms = performance.now() - t
      const key = `${side.label} ${url}?${new URLSearchParams(query)} total=${res.body.total}`
      results[key] = [...(results[key] ?? []), Math.round(ms)]
    }
db.close()
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]
for (const [k, v] of Object.entries(results).sort())
  console.log(`${k}: median ${median(v)} ms (${v.join(' / ')})`)
console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}, ${new Date().toISOString()}`,
)
