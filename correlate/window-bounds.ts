// The per-rule bounds of DESIGN.md "Correlation semantics", with B/A/G differing per rule:
// - L1 lateness is decided per rule: x is late for rule r when ST > x.time + span_r + G_r (span = A_r for
//   an edge, B_r for a core; ST from before x). x is late (routed to the late-events topic) only when it is
//   late for every rule that could use it; otherwise it is buffered and matched under its on-time rules.
// - S1 retention uses the largest B_r + A_r + G_r over x's on-time rules: x is evicted once ST > that.
// Per rule this is exactly the single-window semantics, so a pair (e, c) matches rule r iff neither was
// late for r; keeping x longer for a wider rule never changes what a narrower rule emits.
import type { Side } from '../schemas/types.ts'
import type { CompiledRule } from './match-rules.ts'

export type WindowBounds = {
  /** The subset of `mask` whose rules x is still on time for. */
  onTime(streamTime: number, time: number, side: Side, mask: number): number
  /** How far past its most generous bound a late x is, ms. */
  pastBound(streamTime: number, time: number, side: Side, mask: number): number
  /** Largest B + A + G over the rules in `mask`. */
  retention(mask: number): number
  /** Largest B + A + G over all rules: no future pair can involve an event older than ST − this. */
  maxRetention: number
  /**
   * True when core at cTime matches rule r's window (inclusive) around an edge entry at eFirst that stands
   * for identical alerts up to eLast (eLast = eFirst for one alert): the union of their windows.
   */
  inWindow(rule: number, eFirst: number, eLast: number, cTime: number): boolean
  /** Smallest before + after over the rules in `mask`: alerts that far apart have windows that meet for all of them. */
  foldSpan(mask: number): number
}

export function createWindowBounds(rules: readonly CompiledRule[]): WindowBounds {
  const before = rules.map((r) => r.window.before)
  const after = rules.map((r) => r.window.after)
  const edgeSpan = rules.map((r) => r.window.after + r.window.grace)
  const coreSpan = rules.map((r) => r.window.before + r.window.grace)
  const total = rules.map((r) => r.window.before + r.window.after + r.window.grace)
  const maxRetention = Math.max(0, ...total)
  const retentionCache = new Map<number, number>()

  const onTime = (st: number, time: number, side: Side, mask: number) => {
    const span = side === 'edge' ? edgeSpan : coreSpan
    let kept = mask
    for (let r = 0; r < span.length; r++) {
      const bit = 1 << r
      if ((mask & bit) !== 0 && st > time + (span[r] as number)) kept &= ~bit
    }
    return kept
  }

  const pastBound = (st: number, time: number, side: Side, mask: number) => {
    const span = side === 'edge' ? edgeSpan : coreSpan
    let widest = 0
    for (let r = 0; r < span.length; r++)
      if ((mask & (1 << r)) !== 0) widest = Math.max(widest, span[r] as number)
    return st - (time + widest)
  }

  const retention = (mask: number) => {
    let value = retentionCache.get(mask)
    if (value === undefined) {
      value = 0
      for (let r = 0; r < total.length; r++)
        if ((mask & (1 << r)) !== 0) value = Math.max(value, total[r] as number)
      retentionCache.set(mask, value)
    }
    return value
  }

  const inWindow = (r: number, eFirst: number, eLast: number, cTime: number) =>
    cTime >= eFirst - (before[r] as number) && cTime <= eLast + (after[r] as number)

  const foldSpan = (mask: number) => {
    let span = Number.POSITIVE_INFINITY
    for (let r = 0; r < before.length; r++)
      if ((mask & (1 << r)) !== 0) span = Math.min(span, (before[r] as number) + (after[r] as number))
    return span
  }

  return { onTime, pastBound, retention, maxRetention, inWindow, foldSpan }
}
