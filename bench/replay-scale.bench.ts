// `nerve replay --order time` at backfill scale, run as users run it: a child process over hourly
// CloudTrail log files (1,000 records each, mostly read-only noise, shuffled within each file) and hourly
// Falco NDJSON, the files given in shuffled order. Reports events/s (wall clock, from the summary's
// elapsed_ms) and peak RSS (the summary's peak_rss_mib, and /usr/bin/time's maximum resident set size when
// it is installed, with the CPU time) for 2,000 files (2,004,000 events) beside a run twice as big, to show
// that the peak does not grow with the input. Goals (on a 2-core machine): at most 256 MiB peak RSS, at
// least 100,000 events/s. NERVE_BENCH_REPLAY_ARGS adds replay options (e.g. "--threads 2").
// NERVE_BENCH_REPLAY_HOURS=500 makes a quicker run (the bigger one is then twice that, as always). Below
// each run: its decode and merge phases, wall clock and CPU per thread from /proc (replay-phases.ts).
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { writeHourlyTrail } from '../tests/helpers/hourly-trail-files.ts'
import { phasesText, type ReplayPhases, samplePhases } from './replay-phases.ts'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..')
const config = join(root, 'tests/fixtures/replay/nerve.yaml')
const gnuTime = '/usr/bin/time'

type Summary = {
  read: number
  correlations: number
  elapsed_ms: number
  peak_rss_mib: number
  spilled_runs: number
}

async function replayDir(
  dir: string,
  out: string,
): Promise<{ summary: Summary; maxRssMib?: number; cpuSeconds?: number; phases: ReplayPhases }> {
  // The bin itself, as users run it: its shebang sets nerve's V8 flags.
  const bin = join(root, 'bin/nerve.mjs')
  const extra = (process.env.NERVE_BENCH_REPLAY_ARGS ?? '').split(' ').filter(Boolean)
  // The output goes to a file, whose first bytes mark the start of the merge (replay-phases.ts).
  const args = ['replay', '--order', 'time', '--config', config, '--out', out, ...extra, dir]
  const timed = existsSync(gnuTime)
  const running = timed
    ? run(gnuTime, ['-v', bin, ...args], { maxBuffer: 16 << 20 })
    : run(bin, args, { maxBuffer: 16 << 20 })
  const sampler = samplePhases(running.child.pid as number, out)
  let stderr: string
  let phases: ReplayPhases
  try {
    stderr = (await running).stderr
  } finally {
    phases = sampler.stop()
  }
  const lines = stderr.split('\n')
  const summary = JSON.parse(lines.find((l) => l.startsWith('{"read"')) as string) as Summary
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)
  const user = /User time \(seconds\): ([\d.]+)/.exec(stderr)
  const system = /System time \(seconds\): ([\d.]+)/.exec(stderr)
  return {
    summary,
    maxRssMib: rss ? Math.round(Number(rss[1]) / 1024) : undefined,
    cpuSeconds: user && system ? Number(user[1]) + Number(system[1]) : undefined,
    phases,
  }
}

async function measure(hours: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nerve-bench-replay-scale-'))
  try {
    const started = performance.now()
    const trail = join(dir, 'trail')
    mkdirSync(trail)
    // From 2025 on: 4,000 hours from the helper's default start (November 2026) would reach past the
    // clock, and replay rejects records dated more than max_future_skew ahead, as ingest does.
    writeHourlyTrail(trail, { hours, recordsPerFile: 1000, seed: hours, start: Date.UTC(2025, 0, 1) })
    const made = ((performance.now() - started) / 1000).toFixed(0)
    const bytes = Number((await run('du', ['-sb', trail])).stdout.split('\t')[0])
    const before = loadavg()[0] as number
    const { summary, maxRssMib, cpuSeconds, phases } = await replayDir(trail, join(dir, 'out.ndjson'))
    const load = `load average ${before.toFixed(1)} before, ${(loadavg()[0] as number).toFixed(1)} after`
    const rate = Math.round(summary.read / (summary.elapsed_ms / 1000))
    process.stdout.write(
      `${hours.toLocaleString('en')} hourly trail files + ${hours.toLocaleString('en')} Falco files ` +
        `(${(bytes / 2 ** 20).toFixed(0)} MiB on disk, written in ${made} s): ` +
        `${summary.read.toLocaleString('en')} events in ${(summary.elapsed_ms / 1000).toFixed(1)} s = ` +
        `${rate.toLocaleString('en')} events/s (goal ≥ 100,000), peak RSS ${summary.peak_rss_mib} MiB` +
        `${maxRssMib === undefined ? '' : ` (/usr/bin/time: ${maxRssMib} MiB)`} (goal ≤ 256), ` +
        `${summary.spilled_runs} sorted runs spilled, ${summary.correlations.toLocaleString('en')} correlations` +
        `${cpuSeconds === undefined ? '' : `, ${cpuSeconds.toFixed(1)} s of CPU`} (${load})\n` +
        phasesText(phases),
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export default async function benchReplayScale(): Promise<void> {
  const hours = Number(process.env.NERVE_BENCH_REPLAY_HOURS ?? 2000)
  await measure(hours)
  await measure(hours * 2)
}
