// A warning naming the workload whose credential links were forgotten (its own flood past a per-workload
// cap, or the full table taking from the workload holding the most): at most once a minute per workload,
// with the links forgotten since its last warning. Remembers at most maxWorkloads workloads.
import type { Logger } from '../runtime/logger.ts'

export type EvictionWarnings = { warn(workload: string, count: number): void }

const intervalMs = 60_000
const maxWorkloads = 1_000

export function createEvictionWarnings(deps: { log: Logger; now: () => number }): EvictionWarnings {
  /** Workload → when it was last warned about and what was forgotten since; least recently warned first. */
  const last = new Map<string, { at: number; since: number }>()
  return {
    warn: (workload, count) => {
      const now = deps.now()
      const seen = last.get(workload)
      if (seen !== undefined && now - seen.at < intervalMs) {
        seen.since += count
        return
      }
      const evicted = count + (seen?.since ?? 0)
      last.delete(workload)
      if (last.size >= maxWorkloads) last.delete(last.keys().next().value as string)
      last.set(workload, { at: now, since: 0 })
      deps.log.warn(
        { workload, evicted },
        "Forgot a workload's oldest credential links: it holds more than its cap, or the most when the table is full; its calls with those keys are named by their role.",
      )
    },
  }
}
