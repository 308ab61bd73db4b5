// Puts the per-agent edge budget (agent-budget.ts) between the Falco receiver and the bus: a request's
// alerts past the budget leave before the publish (and before the spool), its sender is still answered
// 202, and when a minute closes (the next request of a later minute, a timer every few seconds, or a clean
// stop) its summaries are published on their own. Folds are counted (nerve_ingest_folded_events_total, no
// agent label) and each closed minute with folds is one warning naming the agents and rules (ids only, at
// most `top`). Alerts kept because the table of the minute is full are counted
// (nerve_ingest_fold_table_full_total) and warned about at most once a minute. A summary the bus cannot
// take waits for the next tick; past one minute's worth waiting (the table's bound) the oldest are dropped
// with an error. What a crash loses: the fold counts of the
// minute under way (its summaries are not yet published); the kept alerts are on the bus.
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { NormalizedEvent } from '../schemas/types.ts'
import { type AgentBudgetConfig, type ClosedMinute, createAgentBudget } from './agent-budget.ts'
import type { Decoded } from './decode-events.ts'
import type { DecodedPublisher } from './publish-decoded.ts'

/** How often a closed minute is looked for when no request closes it. */
const tickMs = 5_000
/** Agents and rules named in one warning. */
const top = 20

export type FoldOverBudget = {
  /** The request's decoded items with the folded alerts taken out of `events`, and how many were. */
  admit(decoded: Decoded): { decoded: Decoded; folded: number }
  /** Publishes the summaries of the minute under way and waits for those in flight. */
  close(): Promise<void>
}

export function createFoldOverBudget(
  config: AgentBudgetConfig,
  deps: { publisher: DecodedPublisher; log: Logger; metrics: Metrics; now: () => number },
): FoldOverBudget {
  const budget = createAgentBudget(config)
  const log = deps.log.child({ component: 'agent_budget' })
  const foldedTotal = deps.metrics.counter(
    'nerve_ingest_folded_events_total',
    "Falco alerts folded over the per-agent budget (ingest.agent_budget): each minute's are counted in one summary alert per agent and rule.",
  )
  const summariesTotal = deps.metrics.counter(
    'nerve_ingest_fold_summaries_total',
    'Summary alerts of folded alerts put on the bus.',
  )
  const lostTotal = deps.metrics.counter(
    'nerve_ingest_fold_summaries_lost_total',
    'Summary alerts dropped because the bus could not take them for longer than a minute of them fills.',
  )
  const tableFullTotal = deps.metrics.counter(
    'nerve_ingest_fold_table_full_total',
    'Falco alerts kept, not folded, because the budget table of the minute was full (many agents or identities).',
  )
  // A minute's summaries: one an entry, plus one catch-all an agent past its cap of rules.
  const maxWaiting = config.maxKeys + Math.ceil(config.maxKeys / config.rulesPerAgent)
  let tableFullWarned = Number.NEGATIVE_INFINITY
  let waiting: NormalizedEvent[] = []
  let publishing: Promise<void> | undefined

  const warn = (closed: ClosedMinute) => {
    log.warn(
      {
        agents: closed.keys.slice(0, top),
        count: closed.keys.length,
        folded: closed.folded,
        minute: new Date(closed.minute).toISOString(),
      },
      'Agents went over their alert budget: the alerts past it were folded into one summary per agent, rule and minute.',
    )
  }

  const take = (closed: ClosedMinute | undefined) => {
    if (!closed) return
    warn(closed)
    waiting.push(...closed.summaries)
    if (waiting.length > maxWaiting) {
      const lost = waiting.length - maxWaiting
      waiting = waiting.slice(lost)
      lostTotal.inc(lost)
      log.error(
        { error_code: 'BUS_UNAVAILABLE', count: lost },
        'Dropped summaries of folded alerts: the bus has not taken them for over a minute.',
      )
    }
  }

  const publish = (): Promise<void> => {
    if (publishing || waiting.length === 0) return publishing ?? Promise.resolve()
    const events = waiting
    waiting = []
    const decoded: Decoded = { events, invalid: [], skipped: {}, internal: 0 }
    publishing = deps.publisher
      .publish('agent_budget', decoded, deps.now())
      .then(
        () => summariesTotal.inc(events.length),
        (err: unknown) => {
          // Back in front of what closed since; the next tick tries again.
          waiting = [...events, ...waiting]
          log.warn(
            { err, count: events.length },
            'The bus did not take the summaries of folded alerts; retrying.',
          )
        },
      )
      .finally(() => {
        publishing = undefined
      })
    return publishing
  }

  const tick = () => {
    take(budget.close(deps.now()))
    void publish()
  }
  const timer = config.perMinute > 0 ? setInterval(tick, tickMs) : undefined
  timer?.unref()

  const admit = (decoded: Decoded) => {
    const { kept, folded, tableFull } = budget.admit(decoded.events, deps.now())
    if (tableFull > 0) {
      tableFullTotal.inc(tableFull)
      const now = deps.now()
      if (now - tableFullWarned >= 60_000) {
        tableFullWarned = now
        log.warn(
          { count: tableFull, max_keys: config.maxKeys },
          'The alert budget table is full for this minute: alerts of further agents and rules are kept, not folded.',
        )
      }
    }
    const closed = budget.close(deps.now())
    if (closed) {
      take(closed)
      void publish()
    }
    if (folded === 0) return { decoded, folded }
    foldedTotal.inc(folded)
    // Raw texts (none on the Falco route) are an optional shortcut of the publish: dropped, not realigned.
    const { rawTexts: _, ...rest } = decoded
    return { decoded: { ...rest, events: kept }, folded }
  }

  const close = async () => {
    if (timer) clearInterval(timer)
    take(budget.close(deps.now(), true))
    await publishing
    await publish()
    if (waiting.length === 0) return
    lostTotal.inc(waiting.length)
    log.error(
      { error_code: 'BUS_UNAVAILABLE', count: waiting.length },
      'Dropped summaries of folded alerts at stop: the bus did not take them.',
    )
    waiting = []
  }

  return { admit, close }
}
