// The whole pipeline on the embedded default, measured from outside: `nerve run` in its own process (as
// `npm start` runs it), loaded by 4 client processes (pipeline-client.ts), each posting NDJSON batches of 250
// over one keep-alive connection. 60,000 events: per round a Falco alert, an IAM write and read-only noise
// of one of 1,000 registry agents; one pair per round (pipeline-events.ts). The rate is events over the time
// from the first POST until the last correlation is visible in the embedded store (its SQLite file, read
// by this process: what GET /v1/correlations serves). Target ≥ 25,000 events/s.
// Beside it, the baseline: the same clients against bare-server.mjs (node:http, JSON.parse per line, 202),
// until the last answer. Then, in the same `nerve run`, the next 60,000 events (figure only): what the
// events cost once V8 has compiled the hot code, the fixed warm-up of a fresh start set apart.
// BENCH_CPU_PROF=DIR writes nerve's CPU profile of the run into DIR; BENCH_PERF=FILE records the cold window
// with Linux perf into FILE, for bench/v8-work.ts (what each thread did, V8's compiler and GC apart).
import { type ChildProcess, fork, spawn } from 'node:child_process'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { tempDir } from '../tests/helpers/random-names.ts'
import { startNerveChild, until } from './nerve-child.ts'
import { pipelineConfig, roundSpacingMs } from './pipeline-events.ts'
import { cpuPerItem, readThreadCpu, readWrittenBytes, writtenPerItem } from './thread-cpu.ts'
import { recordPerf } from './v8-work.ts'

const rounds = Number(process.env.BENCH_PIPELINE_ROUNDS ?? 20_000)
const clients = 4
const batch = 250
const token = 'nrv_bench-token-0123456789abcdef'
const target = 25_000

export default async function pipeline(): Promise<void> {
  const events = rounds * 3
  const bare = await againstBare()
  const { cold, warm } = await againstNerve()
  const rate = events / cold.seconds
  const bareRate = events / bare
  process.stdout.write(
    `pipeline  nerve run ${fmt(rate)} events/s (${events.toLocaleString('en')} events, ${cold.correlations.toLocaleString('en')} correlations visible, ${cold.seconds.toFixed(2)} s; accepted at ${fmt(events / cold.acceptedSeconds)} events/s; ${cold.refused} POSTs refused for back-pressure and sent again)\n` +
      `          bare node:http ${fmt(bareRate)} events/s  ratio ${(rate / bareRate).toFixed(2)}  target ≥ ${target.toLocaleString('en')} events/s: ${rate >= target ? 'met' : 'NOT met'}\n` +
      `          nerve run ${cold.cpu}\n` +
      `          nerve run ${cold.written}\n` +
      `          warm: the next ${events.toLocaleString('en')} events in the same nerve run, its code compiled: ${fmt(events / warm.seconds)} events/s (${warm.refused} POSTs refused and sent again), ${warm.cpu} (figure only)\n`,
  )
}

const fmt = (n: number) => Math.round(n).toLocaleString('en').padStart(7)

type Phase = {
  seconds: number
  acceptedSeconds: number
  refused: number
  correlations: number
  cpu: string
  written: string
}

/**
 * Two phases in one fresh `nerve run`: the row's figure, cold (rounds [0, rounds), as a user's first
 * minute after a start), then the next `rounds` rounds once its code is compiled, to tell the fixed
 * warm-up (V8 compiling each thread's hot code) from the CPU every event costs.
 */
async function againstNerve(): Promise<{ cold: Phase; warm: Phase }> {
  const dir = tempDir('nerve-bench-pipeline')
  const nerve = await startNerveChild(dir, pipelineConfig(), token)
  try {
    const store = new Database(join(nerve.dataDir, 'store.sqlite'), { readonly: true, fileMustExist: true })
    const count = store.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM correlations')
    const pid = nerve.child.pid ?? 0
    const t0 = Date.now() - 3_600_000 - 2 * rounds * roundSpacingMs
    const phase = async (first: number): Promise<Phase> => {
      const cpuBefore = readThreadCpu(pid)
      const writtenBefore = readWrittenBytes(pid)
      const started = performance.now()
      const accepted = await runClients(nerve.base, t0, first)
      const acceptedSeconds = (performance.now() - started) / 1000
      let correlations = 0
      await until(() => {
        correlations = (count.get() as { n: number }).n
        return correlations >= first + rounds
      }, 120_000).catch(async (err: Error) => {
        const metrics = await (await fetch(`${nerve.base}/metrics`)).text()
        const counters = metrics
          .split('\n')
          .filter((l) => /^nerve_(component|correlate)_[a-z_]*_total/.test(l))
        throw new Error(
          `${correlations - first} of ${rounds} correlations visible: ${err.message}\n${counters.join('\n')}`,
        )
      })
      const seconds = (performance.now() - started) / 1000
      if (accepted.total !== rounds * 3) throw new Error(`nerve accepted ${accepted.total} of ${rounds * 3}.`)
      return {
        seconds,
        acceptedSeconds,
        refused: accepted.refused,
        correlations: correlations - first,
        cpu: cpuPerItem(cpuBefore, readThreadCpu(pid), rounds * 3),
        written: writtenPerItem(writtenBefore, readWrittenBytes(pid), rounds * 3),
      }
    }
    const perfFile = process.env.BENCH_PERF
    const stopPerf = perfFile ? await recordPerf(pid, perfFile) : undefined
    const cold = await phase(0)
    await stopPerf?.()
    const warm = await phase(rounds)
    store.close()
    return { cold, warm }
  } finally {
    await nerve.stop()
  }
}

async function againstBare(): Promise<number> {
  const server = spawn(
    process.execPath,
    ['--max-semi-space-size=64', join(import.meta.dirname, 'bare-server.mjs')],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  try {
    const port = await new Promise<string>((resolve) =>
      server.stdout?.once('data', (d) => resolve(String(d).trim())),
    )
    const started = performance.now()
    await runClients(`http://127.0.0.1:${port}`, Date.now() - 3_600_000 - rounds * roundSpacingMs, 0)
    return (performance.now() - started) / 1000
  } finally {
    server.kill('SIGKILL')
  }
}

/**
 * Forks the clients for rounds [first, first + rounds) of event times from t0, waits until each has built
 * its bodies, starts them at once, sums what was accepted. `first` is a multiple of the client count.
 */
async function runClients(
  base: string,
  t0: number,
  first: number,
): Promise<{ total: number; refused: number }> {
  const children: ChildProcess[] = Array.from({ length: clients }, (_, c) =>
    fork(
      join(import.meta.dirname, 'pipeline-client.ts'),
      [
        base,
        token,
        String(c),
        String(clients),
        String(first + rounds),
        String(t0),
        String(batch),
        String(first),
      ],
      { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    ),
  )
  await Promise.all(children.map((child) => new Promise((resolve) => child.once('message', resolve))))
  const done = children.map(
    (child) =>
      new Promise<{ accepted: number; refused: number }>((resolve, reject) => {
        child.once('message', (m) => resolve(m as { accepted: number; refused: number }))
        child.once('exit', (code) => reject(new Error(`A pipeline client exited with code ${code}.`)))
      }),
  )
  for (const child of children) child.send('go')
  const counts = await Promise.all(done)
  for (const child of children) child.kill()
  return {
    total: counts.reduce((a, c) => a + c.accepted, 0),
    refused: counts.reduce((a, c) => a + c.refused, 0),
  }
}
