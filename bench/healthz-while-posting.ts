// The measure shared by the large-body benches (healthz-stall, firehose-stall): on each of `rounds` fresh
// `nerve run`, /healthz is asked again and again (one request at a time, keep-alive) while another process
// (large-body-poster.mjs) posts `files` at once to `path`; the figure of a round is its slowest /healthz
// answer. Every body must be answered `status`, so the figure covers the whole path of an accepted body.
import { spawn } from 'node:child_process'
import { Agent, request } from 'node:http'
import { join } from 'node:path'
import { startNerveChild } from './nerve-child.ts'

export const benchToken = 'nrv_bench-token-0123456789abcdef'

export type Posting = {
  /** Where the rounds' data directories go. */
  dir: string
  files: string[]
  path: string
  /** The Content-Type the poster sends (its default: NDJSON). */
  contentType?: string
  status: number
  rounds: number
  /** The checkout whose `nerve run` is measured (default this one): to measure an older commit beside it. */
  root?: string
}

/** The slowest /healthz answer of each round, in ms. */
export async function slowestHealthzWhilePosting(posting: Posting): Promise<number[]> {
  const worst: number[] = []
  for (let round = 0; round < posting.rounds; round++) {
    const server = await startNerveChild(
      join(posting.dir, `nerve-${round}`),
      // The bodies hold many alerts of few pods and rules: the edge budget would fold most of them
      // before the bus. Set past them, so the bench measures every alert published.
      { log: { level: 'warn' }, ingest: { agent_budget: { alerts_per_rule_per_minute: 1_000_000_000 } } },
      benchToken,
      {},
      posting.root,
    )
    try {
      worst.push(await stallRound(server.base, posting))
    } finally {
      await server.stop()
    }
  }
  return worst
}

async function stallRound(base: string, posting: Posting): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const healthz = () =>
    new Promise<number>((resolve, reject) => {
      const start = performance.now()
      request(`${base}/healthz`, { agent }, (res) => {
        res.resume()
        res.once('end', () => resolve(performance.now() - start))
      })
        .once('error', reject)
        .end()
    })
  for (let i = 0; i < 50; i++) await healthz()
  const env = posting.contentType ? { ...process.env, POSTER_CONTENT_TYPE: posting.contentType } : process.env
  const poster = spawn(
    process.execPath,
    [
      join(import.meta.dirname, 'large-body-poster.mjs'),
      `${base}${posting.path}`,
      benchToken,
      ...posting.files,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env },
  )
  let out = ''
  poster.stdout.on('data', (d) => {
    out += String(d)
  })
  let done = false
  const exited = new Promise<void>((resolve) =>
    poster.once('exit', () => {
      done = true
      resolve()
    }),
  )
  let slowest = 0
  while (!done) slowest = Math.max(slowest, await healthz())
  await exited
  agent.destroy()
  const statuses = JSON.parse(out) as number[]
  if (statuses.some((s) => s !== posting.status))
    throw new Error(`The large bodies posted to ${posting.path} were answered ${statuses.join(', ')}.`)
  return slowest
}
