// Which agents put most of the events on the bus. Nothing bounds one agent's share of the bus or the
// stores (a `cat /etc/shadow-$i` loop of distinct alerts from one pod fills the data dir, and then every
// sender gets 507: docs/threat-model.md), so the operator must at least see who. Per window of published
// events: a gauge of the busiest agent's share and its count (no agent ids as labels), and a warning
// naming the busiest agents (ids in logs only) when one of them sent most of a busy window. State is
// bounded: at most `maxAgents` agents are counted per window, the rest as one "others" sum.
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { NormalizedEvent } from '../schemas/types.ts'

export type AgentVolumeConfig = {
  /** Length of a window, ms. */
  windowMs: number
  /** Agents counted per window; events of agents beyond it are summed, unnamed. */
  maxAgents: number
  /** A window's busiest agent is warned about from this share of its events… */
  warnShare: number
  /** …when the window held at least this many events. */
  warnMinEvents: number
  /** Agents named in the warning. */
  top: number
}

export const defaultAgentVolume: AgentVolumeConfig = {
  windowMs: 60_000,
  maxAgents: 10_000,
  warnShare: 0.5,
  warnMinEvents: 1_000,
  top: 5,
}

export type AgentVolume = {
  /** Counts events that are durably on the bus. */
  note(events: readonly NormalizedEvent[]): void
}

type Busiest = { agent: string; events: number }

export function createAgentVolume(
  config: AgentVolumeConfig,
  deps: { now: () => number; log: Logger; metrics: Metrics },
): AgentVolume {
  let start = deps.now()
  let counts = new Map<string, number>()
  let total = 0
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
    'Events the busiest agent of the last full window (1 min) put on the bus.',
    [],
    () => {
      roll(deps.now())
      return last.busiest
    },
  )

  /** Closes the window when it is over: its figures become the last window's, and a flood is warned about. */
  const roll = (now: number) => {
    if (now - start < config.windowMs) return
    const busiest: Busiest[] = []
    for (const [agent, events] of counts) busiest.push({ agent, events })
    busiest.sort((a, b) => b.events - a.events || (a.agent < b.agent ? -1 : 1))
    const first = busiest[0]?.events ?? 0
    // When a whole window passed after it with nothing published, the last full window was empty.
    last = now - start < 2 * config.windowMs ? { total, busiest: first } : { total: 0, busiest: 0 }
    if (total >= config.warnMinEvents && first >= config.warnShare * total) {
      deps.log.warn(
        { agents: busiest.slice(0, config.top), events: total, window_s: config.windowMs / 1000 },
        'One agent put most of the events on the bus: its flood fills the data dir for every sender.',
      )
    }
    start = now - ((now - start) % config.windowMs)
    counts = new Map()
    total = 0
  }

  const note = (events: readonly NormalizedEvent[]) => {
    roll(deps.now())
    for (const event of events) {
      const agent = event.agent.id
      const seen = counts.get(agent)
      if (seen !== undefined) counts.set(agent, seen + 1)
      else if (counts.size < config.maxAgents) counts.set(agent, 1)
      total++
    }
  }

  return { note }
}
