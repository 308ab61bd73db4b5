// CPU time of another process's threads, from /proc (Linux): the steady figure on a shared machine, where
// wall-clock rates move with the load. Threads are told apart by name (`comm`): the main thread carries the
// process's name, worker threads and libuv's pool their own; threads of one name are summed.

import { readdirSync, readFileSync } from 'node:fs'

/** CPU milliseconds per thread name; empty where /proc is not there. */
export type ThreadCpu = Map<string, number>

const tickMs = 10 // USER_HZ is 100 on Linux

/** Each live thread's id and the text of its `/proc/<pid>/task/<tid>/<file>`; none where /proc is not there. */
function readTaskFiles(pid: number, file: string): [tid: string, text: string][] {
  let tasks: string[]
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return []
  }
  const read: [string, string][] = []
  for (const tid of tasks) {
    try {
      read.push([tid, readFileSync(`/proc/${pid}/task/${tid}/${file}`, 'utf8')])
    } catch {
      // the thread ended meanwhile
    }
  }
  return read
}

/** A thread's name as `comm` gives it; the main thread is `main`. */
function threadName(pid: number, tid: string): string {
  if (tid === String(pid)) return 'main'
  try {
    return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trimEnd()
  } catch {
    return '' // the thread ended meanwhile
  }
}

export function readThreadCpu(pid: number): ThreadCpu {
  const byName: ThreadCpu = new Map()
  for (const [tid, stat] of readTaskFiles(pid, 'stat')) {
    // pid (comm) state …: comm may hold spaces and parentheses, so the fields start after the last ')'.
    const close = stat.lastIndexOf(')')
    const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, close)
    const fields = stat.slice(close + 2).split(' ')
    const ms = (Number(fields[11]) + Number(fields[12])) * tickMs // utime, stime
    byName.set(name, (byName.get(name) ?? 0) + ms)
  }
  return byName
}

/** What each thread name added between two readings (those that added nothing left out), largest first. */
function perThreadDelta(before: Map<string, number>, after: Map<string, number>) {
  const rows: [string, number][] = []
  let total = 0
  for (const [name, value] of after) {
    const added = value - (before.get(name) ?? 0)
    total += added
    if (added > 0) rows.push([name, added])
  }
  rows.sort((a, b) => b[1] - a[1])
  return { total, rows }
}

/** µs of CPU per item between two readings, per thread name (threads that ended meanwhile are lost). */
export function cpuPerItem(before: ThreadCpu, after: ThreadCpu, items: number): string {
  const { total, rows } = perThreadDelta(before, after)
  const us = (ms: number) => ((ms * 1000) / items).toFixed(0)
  return `${us(total)} µs CPU per event (${rows.map(([name, ms]) => `${name} ${us(ms)}`).join(', ')})`
}

/**
 * Bytes written by another process's threads (`wchar` of /proc: files and sockets), per thread name as
 * their CPU: the store writer's WAL, the correlator's checkpoints, the SQLite checkpointers' copies apart.
 */
export type WrittenBytes = Map<string, number>

export function readWrittenBytes(pid: number): WrittenBytes {
  const written: WrittenBytes = new Map()
  for (const [tid, io] of readTaskFiles(pid, 'io')) {
    const name = threadName(pid, tid)
    const bytes = Number(/^wchar: (\d+)$/m.exec(io)?.[1] ?? 0)
    written.set(name, (written.get(name) ?? 0) + bytes)
  }
  return written
}

/** KB written per item between two readings, by thread name, the largest first (threads that ended meanwhile are lost). */
export function writtenPerItem(before: WrittenBytes, after: WrittenBytes, items: number): string {
  const { total, rows } = perThreadDelta(before, after)
  const kb = (bytes: number) => (bytes / 1024 / items).toFixed(1)
  return `${kb(total)} KB written per event (${rows.map(([name, bytes]) => `${name} ${kb(bytes)}`).join(', ')})`
}
