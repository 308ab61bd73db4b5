// Where a `nerve replay --order time` child spends its wall clock and CPU, phase by phase, from outside
// (/proc, sampled every `everyMs` while it runs). The first phase (start-up and decode) ends, at the
// latest, when the first correlation bytes reach the output (the merge writes them in 64 KiB blocks, the
// first within its first few thousand events); the merge phase runs from there to the end. `--out FILE`
// is written as `.FILE.PID.partial` beside it and renamed only once whole (runtime/output-file.ts), so
// that is the file watched: FILE itself appears at the very end. Each
// thread's CPU (user + sys) is read from /proc/<pid>/task/<tid>/stat, the main thread apart: Node.js 20
// names every thread of the process `node`, so the others (decoding threads, V8's platform threads,
// libuv's pool) are told apart by thread id only, the busiest first. A thread that ends between two
// samples loses at most `everyMs` of its CPU.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'

const tickMs = 10 // USER_HZ is 100 on Linux

/** CPU ms per thread id of `pid` (empty when /proc is not there or the process has ended). */
function threadCpu(pid: number): Map<string, number> {
  const cpu = new Map<string, number>()
  let tasks: string[] = []
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return cpu
  }
  for (const tid of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      cpu.set(tid, (Number(fields[11]) + Number(fields[12])) * tickMs)
    } catch {
      // the thread ended meanwhile
    }
  }
  return cpu
}

/** `pid` or its first descendant that is a node process (the bin under /usr/bin/time and env). */
function nodeOf(pid: number): number | undefined {
  try {
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'node') return pid
    const [child] = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')
    return child ? nodeOf(Number(child)) : undefined
  } catch {
    return undefined
  }
}

type Phase = { wallMs: number; main: number; others: number[] }

export type ReplayPhases = { decode?: Phase; merge?: Phase }

/** Bytes written so far to `path` (0 when it does not exist). */
function sizeOf(path: string): number {
  try {
    return statSync(path).size
  } catch {
    return 0
  }
}

/**
 * Samples `pid`'s threads until stop() is called; `output` is the replay's --out file. merging() says
 * whether the merge has been seen to start.
 */
export function samplePhases(pid: number, output: string, everyMs = 250) {
  const started = performance.now()
  let node: number | undefined
  const last = new Map<string, number>()
  let atMerge: { ms: number; cpu: Map<string, number> } | undefined
  const timer = setInterval(() => {
    node ??= nodeOf(pid)
    if (node === undefined) return
    // Threads that ended keep their last reading.
    for (const [tid, ms] of threadCpu(node)) last.set(tid, ms)
    if (atMerge !== undefined) return
    const partial = join(dirname(output), `.${basename(output)}.${node}.partial`)
    if (sizeOf(partial) > 0 || sizeOf(output) > 0)
      atMerge = { ms: performance.now() - started, cpu: new Map(last) }
  }, everyMs)
  const phase = (wallMs: number, from: Map<string, number>, to: Map<string, number>): Phase => {
    const main = String(node)
    const others: number[] = []
    for (const [tid, ms] of to) if (tid !== main) others.push(ms - (from.get(tid) ?? 0))
    return { wallMs, main: (to.get(main) ?? 0) - (from.get(main) ?? 0), others: others.sort((a, b) => b - a) }
  }
  return {
    merging: () => atMerge !== undefined,
    stop(): ReplayPhases {
      clearInterval(timer)
      const ms = performance.now() - started
      if (node === undefined) return {}
      if (atMerge === undefined) return { decode: phase(ms, new Map(), last) }
      return {
        decode: phase(atMerge.ms, new Map(), atMerge.cpu),
        merge: phase(ms - atMerge.ms, atMerge.cpu, last),
      }
    },
  }
}

/** One line per phase: wall clock, the main thread's CPU, and the other threads' (busiest three apart). */
export function phasesText(phases: ReplayPhases): string {
  const s = (ms: number) => (ms / 1000).toFixed(1)
  const line = (name: string, p: Phase | undefined) => {
    if (!p) return ''
    const rest = p.others.slice(3).reduce((a, b) => a + b, 0)
    const busiest = p.others.slice(0, 3).map(s).join(' + ')
    return (
      `  ${name}: ${s(p.wallMs)} s wall, main thread ${s(p.main)} s CPU ` +
      `(${Math.round((100 * p.main) / p.wallMs)} % of the wall clock), other threads ${busiest} + ${s(rest)} s\n`
    )
  }
  return line('start-up and decode', phases.decode) + line('merge (from the first output)', phases.merge)
}
