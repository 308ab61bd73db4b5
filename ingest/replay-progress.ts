// `nerve replay`'s progress line on a terminal: files, events, events/s, the event time reached and an
// ETA, redrawn in place at most every `everyMs`. Nothing at all is written when stderr is not a TTY, so
// a redirected stderr holds only rejected items and the one-line JSON summary.
import type { MergeProgress } from './merge-replay-files.ts'

type Terminal = { isTTY?: boolean; write(text: string): unknown }

export type ReplayProgress = {
  update(p: MergeProgress): void
  /** Erases the line (before other stderr output, and at the end). */
  clear(): void
}

export function createReplayProgress(
  stream: Terminal,
  deps: { now: () => number; everyMs?: number },
): ReplayProgress {
  const everyMs = deps.everyMs ?? 250
  if (!stream.isTTY) return { update: () => {}, clear: () => {} }
  let phase: MergeProgress['phase'] | undefined
  let phaseStart = 0
  let lastDraw = Number.NEGATIVE_INFINITY
  let drawn = false
  return {
    update(p) {
      const now = deps.now()
      if (p.phase !== phase) {
        phase = p.phase
        phaseStart = now
      }
      if (now - lastDraw < everyMs) return
      lastDraw = now
      drawn = true
      stream.write(`\r\x1b[K${formatReplayProgress(p, now - phaseStart)}`)
    },
    clear() {
      if (drawn) stream.write('\r\x1b[K')
      drawn = false
    },
  }
}

/** One progress line (no newline); `elapsedMs` is the time spent in the current phase. */
export function formatReplayProgress(p: MergeProgress, elapsedMs: number): string {
  const seconds = elapsedMs / 1000
  const rate = seconds > 0 ? Math.round(p.events / seconds) : 0
  const n = (x: number) => x.toLocaleString('en')
  if (p.phase === 'read') {
    const done = p.totalBytes > 0 ? p.bytes / p.totalBytes : 0
    return [
      `replay: reading ${n(p.files)}/${n(p.totalFiles)} files (${Math.floor(done * 100)}%)`,
      `${n(p.events)} events`,
      `${n(rate)} events/s`,
      `ETA ${eta(done, seconds)}`,
    ].join(', ')
  }
  const total = p.total ?? p.events
  const done = total > 0 ? p.events / total : 1
  return [
    `replay: merging ${n(p.events)}/${n(total)} events (${Math.floor(done * 100)}%)`,
    `${n(rate)} events/s`,
    `event time ${p.eventTime === undefined ? '-' : new Date(p.eventTime).toISOString().slice(0, 19)}Z`,
    `ETA ${eta(done, seconds)}`,
  ].join(', ')
}

function eta(done: number, seconds: number): string {
  if (done <= 0 || seconds <= 0) return '-'
  const left = Math.max(0, Math.round((seconds * (1 - done)) / done))
  const h = Math.floor(left / 3600)
  const m = Math.floor((left % 3600) / 60)
  const s = left % 60
  const mm = h > 0 ? `${String(m).padStart(2, '0')}` : `${m}`
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(s).padStart(2, '0')}`
}
