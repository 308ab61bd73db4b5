// The main thread's ingest work on the pipeline bench's batches, step by step and per event kind, in CPU time
// of this process: what `nerve run` does to each NDJSON body of 250 Falco alerts (POST /v1/falco) and of 250
// CloudTrail records (POST /v1/cloudtrail) before the bus's storage takes the records: the body to text, the
// decode (split, exact parse, validation, normalization, identity, in parts as a request's), and each event's
// record JSON (a CloudTrail event around its raw text, an edge event as the embedded bus stores it). Each
// stretch takes fresh bodies (new rounds: as in the bench, no event twice), so the collector's work is in the
// figures. With several checkouts (TREE: a worktree's root, default this one) every tree is loaded in this one
// process and they alternate stretch by stretch: compare the medians of the paired ratios, on a shared
// machine the only steady figure. Usage:
//   node --max-semi-space-size=64 --import tsx bench/ingest-steps.ts [TREE...]   (env PAIRS=9 BODIES=24)
import { join } from 'node:path'

type Step = 'body' | 'decode' | 'record'
type Kind = 'falco' | 'cloudtrail'
type Figures = Record<`${Kind} ${Step}`, number>

const roots = process.argv.length > 2 ? process.argv.slice(2) : [join(import.meta.dirname, '..')]
const pairs = Number(process.env.PAIRS ?? 9)
const bodiesPerStretch = Number(process.env.BODIES ?? 24)
const batch = 250

const ev = await import('./pipeline-events.ts')
const registry = ev.pipelineConfig().agents.map((agent) => ({ ...agent, protected: false }))
// As the bench: event times end an hour before now, within ingest.max_future_skew.
const t0 = Date.now() - 3_600_000 - 1_000_000 * ev.roundSpacingMs
let nextRound = 0

async function load(root: string) {
  const { createEventDecoder } = await import(join(root, 'ingest/decode-events.ts'))
  const { decodeInParts } = await import(join(root, 'ingest/decode-in-parts.ts'))
  const { readRequestBody } = await import(join(root, 'ingest/read-request-body.ts'))
  const { eventRecordJson } = await import(join(root, 'ingest/event-record-json.ts'))
  const { storedRecordJson } = await import(join(root, 'bus/record-json.ts'))
  const decoder = createEventDecoder({ agents: registry, revoke: { self_identities: [] } })
  const limits = { maxItems: 10_000, maxDepth: 64 }
  let kept = 0
  const figures = (): Figures => ({
    'falco body': 0,
    'falco decode': 0,
    'falco record': 0,
    'cloudtrail body': 0,
    'cloudtrail decode': 0,
    'cloudtrail record': 0,
  })
  /** One stretch: each body's steps, CPU per event. */
  const stretch = async (bodies: { kind: Kind; body: Buffer }[]): Promise<Figures> => {
    const sum = figures()
    for (const { kind, body } of bodies) {
      const req = {
        body,
        headers: { 'content-type': 'application/x-ndjson' },
        query: {},
        receivedAt: Date.now(),
      }
      let start = process.cpuUsage()
      const text: string = await readRequestBody(req, 64 * 1024 * 1024)
      sum[`${kind} body`] += cpuSince(start)
      start = process.cpuUsage()
      const decoded = await decodeInParts(decoder, kind, text, limits, {
        receivedAt: req.receivedAt,
        maxRecords: limits.maxItems,
        maxDepth: limits.maxDepth,
        rawTexts: kind !== 'falco',
      })
      sum[`${kind} decode`] += cpuSince(start)
      if (decoded.events.length !== batch)
        throw new Error(`${decoded.events.length} of ${batch} events decoded`)
      start = process.cpuUsage()
      decoded.events.forEach((event: unknown, i: number) => {
        const record = kind === 'falco' ? undefined : eventRecordJson(event, decoded.rawTexts?.[i])
        kept += (record?.text ?? storedRecordJson(event, i)).length
      })
      sum[`${kind} record`] += cpuSince(start)
    }
    const perKind = (bodies.length / 2) * batch
    for (const key of Object.keys(sum) as (keyof Figures)[]) sum[key] /= perKind
    return sum
  }
  return { root, stretch, kept: () => kept }
}

const cpuSince = (start: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(start)
  return used.user + used.system
}

/** Fresh bodies: half Falco alerts, half CloudTrail records (an IAM write and a read of each round). */
function bodies(count: number): { kind: Kind; body: Buffer }[] {
  const out: { kind: Kind; body: Buffer }[] = []
  for (let b = 0; b < count / 2; b++) {
    const rounds = Array.from({ length: batch }, () => nextRound++)
    out.push({ kind: 'falco', body: Buffer.from(rounds.map((r) => ev.falcoAlert(r, t0)).join('\n')) })
    const records = rounds.map((r, i) => ev.cloudTrailRecord(r, t0, i % 2 === 0))
    out.push({ kind: 'cloudtrail', body: Buffer.from(records.join('\n')) })
  }
  return out
}

const trees = await Promise.all(roots.map(load))
for (const tree of trees) await tree.stretch(bodies(bodiesPerStretch))
const results: Figures[][] = trees.map(() => [])
for (let p = 0; p < pairs; p++) {
  const order = trees.map((_, i) => i)
  if (p % 2 === 1) order.reverse()
  for (const i of order) {
    const stretch = bodies(bodiesPerStretch)
    results[i]?.push(await (trees[i] as (typeof trees)[number]).stretch(stretch))
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const keys = Object.keys(results[0]?.[0] ?? {}) as (keyof Figures)[]
for (const [i, tree] of trees.entries()) {
  const runs = results[i] as Figures[]
  const cells = keys.map((k) => `${k} ${median(runs.map((r) => r[k])).toFixed(2)}`)
  process.stdout.write(`${tree.root}\n  µs CPU per event (medians of ${pairs}): ${cells.join(', ')}\n`)
  if (i === 0) continue
  const base = results[0] as Figures[]
  const ratios = keys.map(
    (k) => `${k} ${median(runs.map((r, j) => r[k] / (base[j] as Figures)[k])).toFixed(3)}`,
  )
  process.stdout.write(`  paired ratio to ${trees[0]?.root}: ${ratios.join(', ')}\n`)
}
