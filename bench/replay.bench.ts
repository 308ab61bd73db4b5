// `nerve replay` throughput beside a plain JSON.parse of every line of the same file, in events per
// CPU-second (process.cpuUsage: steady on a shared machine). Target: replay ≥ 0.3 of the JSON.parse rate.
// The input is written once, seeded: real CloudTrail records (Stratus Red Team detonation logs) and real
// Falco alerts (falco.org examples) with fresh ids and times, 85% CloudTrail. 500 roles and 300 pods make
// the noise; 20 workloads named in the registry run a shell, then change IAM privileges (they correlate).
// The timed path is the one of nerve-replay.ts's replay command (prepareReplay: read, decode and merge by event
// time), push every event through the correlator, serialize the correlations.
// Then the same from outside, as a user runs it: the bin (`nerve replay --config FILE INPUT`, default
// options, its shebang's V8 flag), wall clock and CPU (user + sys, from /usr/bin/time when installed)
// including its start-up, beside JSON.parse of the same lines in a process of its own
// (bench/parse-lines.mjs, same flag). NERVE_BENCH_REPLAY_ARGS adds options to the bin (e.g. "--threads 2").
// NERVE_BENCH_REPLAY_BASE=DIR (a checkout of another commit, e.g. a detached worktree of the base) also runs
// that checkout's bin once on the same input and says whether its output bytes are the same.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { defaultReplayBudgetBytes } from '../ingest/parse-byte-size.ts'
import { prepareReplay } from '../nerve-replay.ts'
import { loadConfig } from '../runtime/load-config.ts'
import type { Config } from '../schemas/types.ts'

/** The issue's row: 200,000 lines (BENCH_REPLAY_EVENTS=20000 for a quicker look). */
const events = Number(process.env.BENCH_REPLAY_EVENTS ?? 200_000)
const hotAgents = 20
const T0 = Date.UTC(2026, 10, 25, 8)
const fixtures = join(import.meta.dirname, '../tests/fixtures')

let seed = 11
/** mulberry32: a seeded generator, so every run measures the same input. */
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
}
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T
const uuid = (n: number) => {
  const h = createHash('md5').update(`replay-${n}`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
}
const lines = (file: string) => readFileSync(join(fixtures, file), 'utf8').trim().split('\n')

type Json = Record<string, unknown>

/** The replay input (NDJSON) and a config naming the hot workloads as agents. */
export function writeReplayInput(dir: string): { file: string; config: string } {
  seed = 11
  const trail = lines('cloudtrail/stratus-red-team-detonation-logs.ndjson').map((l) => JSON.parse(l) as Json)
  const risky = trail.filter((r) =>
    /^(AttachRolePolicy|UpdateAssumeRolePolicy|CreateRole)$/.test(`${r.eventName}`),
  )
  // evt.time is a 19-digit integer: JSON.parse would round it, so it is written back as text below.
  const alerts = lines('falco/falco-website.ndjson').map(
    (l) => JSON.parse(l.replace(/"evt\.time":(\d+)/, '"evt.time":"$1"')) as Json,
  )
  const shell = alerts.filter((a) => a.rule === 'Terminal shell in container')
  const out: string[] = []
  for (let n = 0; n < events; n++) {
    const now = T0 + n * 20
    const hot = random() < 0.02 ? Math.floor(random() * hotAgents) : -1
    if (random() < 0.15) out.push(falcoAlert(hot >= 0 ? pick(shell) : pick(alerts), now, hot))
    else
      out.push(
        cloudTrailRecord(hot >= 0 ? pick(risky) : pick(trail), now - Math.floor(random() * 300_000), n, hot),
      )
  }
  const file = join(dir, 'replay-input.ndjson')
  writeFileSync(file, `${out.join('\n')}\n`)
  const agents = Array.from(
    { length: hotAgents },
    (_, k) =>
      `  - id: shop-api-${k}\n    match:\n      k8s: [{ namespace: shop, pod: "api-${k}-*" }]\n      aws: ["arn:aws:iam::123456789012:role/shop-api-${k}"]`,
  )
  const config = join(dir, 'nerve.yaml')
  writeFileSync(config, `agents:\n${agents.join('\n')}\n`)
  return { file, config }
}

function falcoAlert(template: Json, now: number, hot: number): string {
  const fields = { ...(template.output_fields as Json) }
  const ns = BigInt(now) * 1_000_000n + BigInt(Math.floor(random() * 1_000_000))
  const time = `${new Date(now).toISOString().slice(0, 19)}.${String(ns % 1_000_000_000n).padStart(9, '0')}Z`
  if ('k8s.pod.name' in fields) {
    const pod = hot >= 0 ? hot : Math.floor(random() * 300)
    fields['k8s.ns.name'] = hot >= 0 ? 'shop' : `team-${pod % 12}`
    fields['k8s.pod.name'] = `${hot >= 0 ? 'api' : 'worker'}-${pod}-7dc9f5fbb8-gbfk7`
  }
  if ('evt.time' in fields) fields['evt.time'] = '@evt.time@'
  return JSON.stringify({ ...template, output_fields: fields, time }).replace('"@evt.time@"', String(ns))
}

function cloudTrailRecord(template: Json, time: number, n: number, hot: number): string {
  const record: Json = {
    ...template,
    eventID: uuid(n),
    eventTime: `${new Date(time).toISOString().slice(0, 19)}Z`,
  }
  const ui = template.userIdentity as Json | undefined
  if (hot >= 0 || ui?.type === 'AssumedRole') {
    const role = hot >= 0 ? `shop-api-${hot}` : `svc-${Math.floor(random() * 500)}`
    record.userIdentity = {
      type: 'AssumedRole',
      principalId: `AROA4QEXAMPLE${role.length}:botocore-session-${n % 97}`,
      arn: `arn:aws:sts::123456789012:assumed-role/${role}/botocore-session-${n % 97}`,
      accountId: '123456789012',
      accessKeyId: `ASIA4QEXAMPLE${String(n % 9973).padStart(7, '0')}`,
      sessionContext: {
        sessionIssuer: {
          type: 'Role',
          principalId: `AROA4QEXAMPLE${role.length}`,
          arn: `arn:aws:iam::123456789012:role/${role}`,
          accountId: '123456789012',
          userName: role,
        },
        attributes: { creationDate: record.eventTime, mfaAuthenticated: 'false' },
      },
    }
  }
  return JSON.stringify(record)
}

/** What `nerve replay --order time FILE` does, output kept in memory instead of written. */
async function replayOnce(
  config: Config,
  file: string,
): Promise<{ read: number; correlations: number; bytes: number }> {
  const input = await prepareReplay([{ path: file, size: statSync(file).size }], config, {
    order: 'time',
    budgetBytes: defaultReplayBudgetBytes,
    spillDir: tmpdir(),
    // The main thread decodes, as this bench always measured (--threads 0).
    threads: 0,
  })
  let bytes = 0
  try {
    for (const event of input.events()) {
      for (const correlation of input.replayer.push(event).correlations)
        bytes += JSON.stringify(correlation).length + 1
    }
  } finally {
    input.close()
  }
  const counts = input.replayer.counts()
  return { read: counts.read + input.invalidCount, correlations: counts.correlations, bytes }
}

/** Parses every line of the file `times` times over; returns the lines parsed. */
function parseLines(file: string, times: number): number {
  let parsed = 0
  for (let n = 0; n < times; n++) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line === '') continue
      JSON.parse(line)
      parsed++
    }
  }
  return parsed
}

/**
 * CPU microseconds of a run of `work`. Neither contender may pay for the other's garbage or heap shape
 * (the JSON.parse round leaves the whole file as one string), so a full collection (npm run bench exposes
 * gc) and then an untimed run of the same work come first: a run right after a full collection also pays
 * for regrowing the heap.
 */
async function cpu<T>(work: () => T | Promise<T>): Promise<{ micros: number; result: T }> {
  ;(globalThis as { gc?: () => void }).gc?.()
  await work()
  const start = process.cpuUsage()
  const result = await work()
  const used = process.cpuUsage(start)
  return { micros: used.user + used.system, result }
}

const run = promisify(execFile)
const root = join(import.meta.dirname, '..')
const gnuTime = '/usr/bin/time'

/** Wall-clock and CPU seconds of a child process (CPU undefined without GNU time), and its stdout. */
async function timeOutside(
  command: string,
  args: string[],
): Promise<{ wall: number; cpu?: number; stdout: Buffer }> {
  const timed = existsSync(gnuTime)
  const started = performance.now()
  const { stdout, stderr } = timed
    ? await run(gnuTime, ['-v', command, ...args], { encoding: 'buffer', maxBuffer: 256 << 20 })
    : await run(command, args, { encoding: 'buffer', maxBuffer: 256 << 20 })
  const wall = (performance.now() - started) / 1000
  const user = /User time \(seconds\): ([\d.]+)/.exec(stderr.toString())
  const system = /System time \(seconds\): ([\d.]+)/.exec(stderr.toString())
  return { wall, cpu: user && system ? Number(user[1]) + Number(system[1]) : undefined, stdout }
}

/**
 * The issue's row as measured from outside: alternating pairs of the bin's replay of `file` and
 * JSON.parse of its lines in a process of its own; rates per wall-clock second and per CPU-second.
 */
async function outsidePairs(file: string, config: string, pairs: number): Promise<string> {
  const extra = (process.env.NERVE_BENCH_REPLAY_ARGS ?? '').split(' ').filter(Boolean)
  const replayArgs = ['replay', '--config', config, ...extra, file]
  const bin = () => timeOutside(join(root, 'bin/nerve.mjs'), replayArgs)
  const parse = () =>
    timeOutside(process.execPath, ['--max-semi-space-size=64', join(root, 'bench/parse-lines.mjs'), file])
  const rows: { bin: Awaited<ReturnType<typeof bin>>; parse: Awaited<ReturnType<typeof parse>> }[] = []
  const hashes = new Set<string>()
  const loadBefore = loadavg()[0] as number
  for (let pair = 0; pair < pairs; pair++) {
    const first = pair % 2 === 0 ? await bin() : await parse()
    const second = pair % 2 === 0 ? await parse() : await bin()
    const row = pair % 2 === 0 ? { bin: first, parse: second } : { bin: second, parse: first }
    hashes.add(createHash('sha256').update(row.bin.stdout).digest('hex'))
    rows.push(row)
  }
  const base = process.env.NERVE_BENCH_REPLAY_BASE
  const baseHash = base
    ? createHash('sha256')
        .update((await timeOutside(join(base, 'bin/nerve.mjs'), replayArgs)).stdout)
        .digest('hex')
    : undefined
  const lines = Number(rows[0]?.parse.stdout.toString().trim())
  const wallRatios = rows.map((r) => r.parse.wall / r.bin.wall)
  const cpuRatios = rows.flatMap((r) => (r.bin.cpu && r.parse.cpu ? [r.parse.cpu / r.bin.cpu] : []))
  const range = (values: number[]) =>
    `${median(values).toFixed(2)} (pairs ${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)})`
  const fmt = (n: number) => Math.round(n).toLocaleString('en').padStart(9)
  const seconds = (values: (number | undefined)[]) =>
    values.map((v) => (v === undefined ? '?' : v.toFixed(2))).join(', ')
  return (
    `outside nerve replay${extra.length > 0 ? ` ${extra.join(' ')}` : ''} (the bin, default options) ${fmt(lines / median(rows.map((r) => r.bin.wall)))} events per second, wall clock; JSON.parse in its own process ${fmt(lines / median(rows.map((r) => r.parse.wall)))} lines per second\n` +
    `        wall ratio ${range(wallRatios)}; CPU ratio ${cpuRatios.length > 0 ? range(cpuRatios) : 'unknown (no /usr/bin/time)'}  (target ratio ≥ 0.30)\n` +
    `        bin ${seconds(rows.map((r) => r.bin.wall))} s wall, ${seconds(rows.map((r) => r.bin.cpu))} s CPU; JSON.parse ${seconds(rows.map((r) => r.parse.wall))} s wall, ${seconds(rows.map((r) => r.parse.cpu))} s CPU (${pairs} pairs, start-up included)\n` +
    `        output sha256 ${[...hashes].map((h) => h.slice(0, 16)).join(', ')}${hashes.size === 1 ? ' (the same in every run)' : ' (DIFFERS between runs)'}; load average ${loadBefore.toFixed(1)} before, ${(loadavg()[0] as number).toFixed(1)} after\n` +
    (baseHash === undefined
      ? ''
      : `        ${base}: output sha256 ${baseHash.slice(0, 16)} (${hashes.size === 1 && hashes.has(baseHash) ? 'the same bytes' : 'DIFFERENT bytes'})\n`)
  )
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

export default async function benchReplay(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nerve-bench-replay-'))
  try {
    const input = writeReplayInput(dir)
    const config = loadConfig({ file: input.config })
    const size = readFileSync(input.file).length
    // Pairs of rounds, one of each, the order alternating. The machine's speed drifts over seconds, so a
    // ratio is taken within a pair (both under the same drift) and the median pair is reported with the
    // spread. A JSON.parse round parses the input four times, so that both rounds of a pair last about as
    // long and run the same risk of a slow patch.
    const pairs: { replay: number; parse: number; ratio: number }[] = []
    let summary = { read: 0, correlations: 0 }
    for (let pair = 0; pair < 5; pair++) {
      const timeReplay = async () => {
        const run = await cpu(() => replayOnce(config, input.file))
        summary = run.result
        return run.result.read / (run.micros / 1e6)
      }
      const timeParse = async () => {
        const run = await cpu(() => parseLines(input.file, 4))
        return run.result / (run.micros / 1e6)
      }
      let replay: number
      let parse: number
      if (pair % 2 === 0) {
        replay = await timeReplay()
        parse = await timeParse()
      } else {
        parse = await timeParse()
        replay = await timeReplay()
      }
      pairs.push({ replay, parse, ratio: replay / parse })
    }
    const ratios = pairs.map((p) => p.ratio)
    const ratio = median(ratios)
    const fmt = (n: number) => Math.round(n).toLocaleString('en').padStart(9)
    process.stdout.write(
      `input   ${summary.read.toLocaleString('en')} events, ${(size / 1024 ** 2).toFixed(1)} MiB NDJSON (85% CloudTrail), ${summary.correlations} correlations\n` +
        `replay  nerve ${fmt(median(pairs.map((p) => p.replay)))} events per CPU-second  JSON.parse ${fmt(median(pairs.map((p) => p.parse)))} lines per CPU-second (medians of 5 pairs)\n` +
        `        ratio ${ratio.toFixed(2)} (pairs ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})  (target ratio ≥ 0.30: ${ratio >= 0.3 ? 'met' : 'not met'})\n`,
    )
    process.stdout.write(await outsidePairs(input.file, input.config, 3))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
