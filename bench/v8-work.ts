// What each thread of `nerve run` spent its CPU on, by kind of work, from `perf script` (Linux perf): V8's
// optimizing compiler (TurboFan), its garbage collector's phases, Sparkplug, libuv's file work (the WALs'
// fdatasync), and the rest (JavaScript, SQLite, Node). The bench prints the CPU of the threads named `node`
// as one figure; this tells apart what runs under that name: V8's platform threads (compilation and GC for
// every isolate), libuv's pool, tsx's loader threads, and the main thread. With the pipeline bench:
//   BENCH_PERF=/tmp/pipeline.perf npm run bench pipeline        # perf record over the cold window only
//   perf script -F comm,pid,tid,ip,sym -i /tmp/pipeline.perf | node --import tsx bench/v8-work.ts
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** The frequency `recordPerf` samples at. */
export const perfHz = 999

/**
 * Starts `perf record -g` on a running process (all its threads) into `file`; the returned function stops
 * it and resolves once perf has written the file. perf must be installed and allowed to attach.
 */
export async function recordPerf(pid: number, file: string): Promise<() => Promise<void>> {
  const perf = spawn('perf', ['record', '-F', String(perfHz), '-g', '-p', String(pid), '-o', file], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const exited = new Promise<void>((resolve, reject) => {
    perf.once('error', reject)
    perf.once('exit', () => resolve())
  })
  // perf attaches to every thread before it samples; its first samples come within a second.
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 1_000))])
  if (perf.exitCode !== null) throw new Error(`perf record exited with code ${perf.exitCode}.`)
  return async () => {
    perf.kill('SIGINT')
    await exited
  }
}

export const kinds = [
  'turbofan',
  'scavenge',
  'marking',
  'sweeping',
  'gc other',
  'sparkplug',
  'file sync',
  'rest',
] as const
export type Kind = (typeof kinds)[number]

/** The kind of work a sample's stack (leaf first) was doing. */
export function kindOf(frames: readonly string[]): Kind {
  const stack = frames.join(' ')
  if (/Scaveng/.test(stack)) return 'scavenge'
  if (/ConcurrentMarking|MarkCompact|IncrementalMarking|MarkingVisitor|MarkingBarrier/.test(stack))
    return 'marking'
  if (/Sweep/.test(stack)) return 'sweeping'
  if (/v8::internal::compiler::|OptimizedCompilationJob/.test(stack)) return 'turbofan'
  if (/MemoryAllocator|Unmapper|GCTracer|v8::internal::Heap::|GlobalHandles::/.test(stack)) return 'gc other'
  if (/Baseline(Batch)?Compiler|baseline::/.test(stack)) return 'sparkplug'
  if (/uv__fs_work|fdatasync|fsync/.test(stack)) return 'file sync'
  return 'rest'
}

/** Which thread a sample ran on: its name, and for Node's unnamed threads what their stack says they are. */
export function threadOf(comm: string, pid: string, tid: string, frames: readonly string[]): string {
  if (pid === tid) return 'main'
  if (comm !== 'node') return comm
  const stack = frames.join(' ')
  if (/DefaultJobWorker|PlatformWorkerThread|WorkerThreadsTaskRunner/.test(stack)) return 'node: V8 platform'
  if (/worker::Worker::Run/.test(stack)) return 'node: loader thread'
  if (/ worker start_thread|uv__fs_work|uv__work/.test(` ${stack}`)) return 'node: libuv pool'
  return 'node: other'
}

/** Samples per thread and kind in the text of `perf script -F comm,pid,tid,ip,sym` (with -g stacks). */
export function tally(script: string): Map<string, Map<Kind, number>> {
  const byThread = new Map<string, Map<Kind, number>>()
  const add = (head: string[] | undefined, frames: string[]) => {
    if (!head) return
    const [comm = '', pidTid = ''] = head
    const [pid = '', tid = ''] = pidTid.split('/')
    const thread = threadOf(comm, pid, tid, frames)
    const kind = kindOf(frames)
    const counts = byThread.get(thread) ?? new Map<Kind, number>()
    counts.set(kind, (counts.get(kind) ?? 0) + 1)
    byThread.set(thread, counts)
  }
  let head: string[] | undefined
  let frames: string[] = []
  for (const line of script.split('\n')) {
    const sample = /^(\S+)\s+(\d+\/\d+)\s*$/.exec(line.trimEnd())
    if (sample) {
      add(head, frames)
      head = [sample[1] as string, sample[2] as string]
      frames = []
    } else if (line.trim()) frames.push(line.trim().split(/\s+/).slice(1).join(' '))
  }
  add(head, frames)
  return byThread
}

if (process.argv[1] === import.meta.filename) {
  const hz = Number(process.argv[2] ?? perfHz)
  const byThread = tally(readFileSync(0, 'utf8'))
  const ms = (samples: number) => Math.round((samples * 1000) / hz)
  const rows = [...byThread].map(([thread, counts]) => {
    const total = [...counts.values()].reduce((a, b) => a + b, 0)
    return { thread, total, counts }
  })
  rows.sort((a, b) => b.total - a.total)
  for (const { thread, total, counts } of rows) {
    const parts = kinds.filter((k) => counts.get(k)).map((k) => `${k} ${ms(counts.get(k) ?? 0)}`)
    process.stdout.write(`${thread.padEnd(20)} ${String(ms(total)).padStart(6)} ms: ${parts.join(', ')}\n`)
  }
}
