// Which agents put most of the events on the bus. Nothing bounds one agent's share of the bus or the
// stores (a `cat /etc/shadow-$i` loop of distinct alerts from one pod fills the data dir, and then every
// sender gets 507: docs/threat-model.md), so the operator must at least see who. Per window of published
// events: a gauge of the busiest agent's share and its count (no agent ids as labels), and a warning
// naming the busiest agents (ids in logs only) when one of them sent most of a busy window. State is
// bounded, whatever the number of agents or their order: a heavy-hitters summary of `counters` counters
// (heavy-hitters.ts), in which an agent's count may read low by at most the window's events over
// (counters + 1), and never high: an agent named in the warning sent at least the share it is named with.
//
// A fallback id is text the watched agent chooses (its pod names, its role session names), so a flood
// split over 2 or 3 new pods never made one id busiest. Events are also counted by their id's root (what
// the agent cannot multiply from where it runs: rootOf), in a second summary of the same size, with a
// gauge of the busiest root's share and a warning when a root sent most of a busy window that no single
// agent did.
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

/**
 * What an agent id falls back from, which the watched agent cannot multiply from where it runs: the
 * namespace (with its cluster) of a workload id, the role of a role session's ARN (and the account's
 * federated users of a federated user's), one key for every event naming no one. A registered agent's id
 * is its own root: the operator named it. Host ids are roots already.
 */
export function rootOf(agent: NormalizedEvent['agent'], identity: NormalizedEvent['identity']): string {
  const id = agent.id
  switch (agent.resolved_by) {
    case 'registry':
    case 'host':
      return id
    case 'unresolved':
      return 'unresolved'
    case 'workload':
      return `namespace:${id.slice(0, id.lastIndexOf('/'))}`
    default: {
      // A stitched holder without a registry entry, or a principal: the workload's namespace when the
      // event names one, else the ARN without the session (or federated user) name.
      if (agent.resolved_by === 'stitched' && identity.k8s_namespace !== undefined && id.includes('/'))
        return `namespace:${id.slice(0, id.lastIndexOf('/'))}`
      const session = /^(.*:(?:assumed-role\/[^/]+|federated-user))\/[^/]*$/.exec(id)
      return session ? (session[1] as string) : id
    }
  }
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
  const roots = createHeavyHitters(config.counters)
  /** The last closed window: its total, busiest agent and busiest root. */
  let last = { total: 0, busiest: 0, busiestRoot: 0 }

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

  deps.metrics.gauge(
    'nerve_ingest_busiest_agent_root_share',
    "Share (0-1) of the events ingest put on the bus in the last full window (1 min) that came from its busiest agent root: a fallback id's namespace (with its cluster), role or host, whatever pod or session names the agent made up; a registered agent is its own root.",
    [],
    () => {
      roll(deps.now())
      return last.total === 0 ? 0 : last.busiestRoot / last.total
    },
  )

  /** Closes the window when it is over: its figures become the last window's, and a flood is warned about. */
  const roll = (now: number) => {
    if (now - start < config.windowMs) return
    const total = counts.total()
    const busiest = counts.top(config.top).map(({ key, count }) => ({ agent: key, events: count }))
    const first = busiest[0]?.events ?? 0
    const busiestRoots = roots.top(config.top).map(({ key, count }) => ({ root: key, events: count }))
    const firstRoot = busiestRoots[0]?.events ?? 0
    // When a whole window passed after it with nothing published, the last full window was empty.
    last =
      now - start < 2 * config.windowMs
        ? { total, busiest: first, busiestRoot: firstRoot }
        : { total: 0, busiest: 0, busiestRoot: 0 }
    const busy = total >= config.warnMinEvents
    if (busy && first < config.warnShare * total && firstRoot >= config.warnShare * total) {
      deps.log.warn(
        {
          roots: busiestRoots,
          agents: busiest,
          events: total,
          count_error: roots.undercount(),
          window_s: config.windowMs / 1000,
        },
        'One namespace, role or host put most of the events on the bus under several agent ids: its flood fills the data dir for every sender.',
      )
    }
    if (busy && first >= config.warnShare * total) {
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
    roots.clear()
  }

  // The root of the last id, kept: a batch is mostly one agent's events, and a flood's always is.
  let lastId: string | undefined
  let lastBy: string | undefined
  let lastRoot = ''
  const note = (events: readonly NormalizedEvent[]) => {
    roll(deps.now())
    for (const event of events) {
      const { agent } = event
      counts.add(agent.id)
      if (agent.id !== lastId || agent.resolved_by !== lastBy || agent.resolved_by === 'stitched') {
        lastId = agent.id
        lastBy = agent.resolved_by
        lastRoot = rootOf(agent, event.identity)
      }
      roots.add(lastRoot)
    }
  }

  return { note }
}
