// Which agents put most of the events on the bus. Nothing bounds one agent's share of the bus or the
// stores (a `cat /etc/shadow-$i` loop of distinct alerts from one pod fills the data dir, and then every
// sender gets 507: docs/threat-model.md), so the operator must at least see who. Per window of published
// events: a gauge of the busiest agent's share and its count (no agent ids as labels), and a warning
// naming the busiest agents (ids in logs only) when one of them sent most of a busy window. State is
// bounded, whatever the number of agents or their order: a heavy-hitters summary of `counters` counters
// (heavy-hitters.ts), in which an agent's count may read low by at most the window's events over
// (counters + 1), and never high: an agent named in the warning sent at least the share it is named with.
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { NormalizedEvent } from '../schemas/types.ts'
import { createHeavyHitters } from './heavy-hitters.ts'

export type AgentVolumeConfig = {
  /** Length of a window, ms. */
  windowMs: number
  /** Counters per window: any agent with more than 1 / (counters + 1) of a window's events is counted. */
  counters: number
  /** A window's busiest agent is warned about from this share of its events… */
  warnShare: number
  /** …when the window held at least this many events. */
  warnMinEvents: number
  /** Agents named in the warning. */
  top: number
}

export const defaultAgentVolume: AgentVolumeConfig = {
  windowMs: 60_000,
  counters: 1_000,
  warnShare: 0.5,
  warnMinEvents: 1_000,
  top: 5,
}

export type AgentVolume = {
  /** Counts events that are durably on the bus. */
  note(events: readonly NormalizedEvent[]): void
}

export function createAgentVolume(
  config: AgentVolumeConfig,
  deps: { now: () => number; log: Logger; metrics: Metrics },
): AgentVolume {
  let start = deps.now()
  const counts = createHeavyHitters(config.counters)
  /** The last closed window: its total and busiest agent. */
  let last = { total: 0, busiest: 0 }

  deps.metrics.gauge(
    'nerve_ingest_busiest_agent_share',
    'Share (0-1) of the events ingest put on the bus in the last full window (1 min) that came from its busiest agent; a warning in the log names it.',
    [],
    () => {
      roll(deps.now())
      return last.total === 0 ? 0 : last.busiest / last.total
    },
  )
  deps.metrics.gauge(
    'nerve_ingest_busiest_agent_events',
    "Events the busiest agent of the last full window (1 min) put on the bus; past 1,000 agents in the window it may read low, by at most 0.1 % of the window's events.",
    [],
    () => {
      roll(deps.now())
      return last.busiest
    },
  )

  /** Closes the window when it is over: its figures become the last window's, and a flood is warned about. */
  const roll = (now: number) => {
    if (now - start < config.windowMs) return
    const total = counts.total()
    const busiest = counts.top(config.top).map(({ key, count }) => ({ agent: key, events: count }))
    const first = busiest[0]?.events ?? 0
    // When a whole window passed after it with nothing published, the last full window was empty.
    last = now - start < 2 * config.windowMs ? { total, busiest: first } : { total: 0, busiest: 0 }
    if (total >= config.warnMinEvents && first >= config.warnShare * total) {
      deps.log.warn(
        {
          agents: busiest,
          events: total,
          // How many events each agent's count may miss (0 while the window had at most `counters` agents).
          count_error: counts.undercount(),
          window_s: config.windowMs / 1000,
        },
        'One agent put most of the events on the bus: its flood fills the data dir for every sender.',
      )
    }
    start = now - ((now - start) % config.windowMs)
    counts.clear()
  }

  const note = (events: readonly NormalizedEvent[]) => {
    roll(deps.now())
    for (const event of events) counts.add(event.agent.id)
  }

  return { note }
}
