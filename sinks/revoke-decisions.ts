// Deciding revokes: each correlation of a batch goes through the revoke policy (revoke-policy.ts), and the
// decisions worth a row are written to the outbox before the bus commits the batch. Which decisions get a
// row, under which key, and when the outbox forgets them is decided here; delivering them is
// revoke-delivery.ts's.

import type { CorrelationHead } from '../bus/topics.ts'
import { errorCodeOf, errorFieldsOf } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { ComponentTelemetry, Metrics } from '../runtime/metrics.ts'
import type { Config, Correlation } from '../schemas/types.ts'
import { logRevokeOutcome } from './operator-log-lines.ts'
import type { DecisionEntry, OutboxDelivery, RevokeOutbox } from './revoke-outbox.ts'
import { buildRevokeEvent } from './revoke-payload.ts'
import {
  createRevokePolicy,
  decideBatch,
  type MergedRevoke,
  type RevokeDecision,
  revokeDecisionId,
  suppressionDecisionId,
} from './revoke-policy.ts'

export type RevokeDecisionsConfig = {
  revoke: Config['revoke']
  agents: Config['agents']
  /** How long the bus may deliver a correlation again (bus.retention): the outbox's duplicate check lasts as long. */
  redelivery?: Config['bus']['retention']
  /** The webhook targets' labels: a revoke that goes ahead is due to each. */
  targetLabels: readonly string[]
}

/** What deciding and delivering (revoke-delivery.ts) share: the outbox, telemetry and the clock. */
export type RevokeOutboxDeps = {
  outbox: RevokeOutbox
  log: Logger
  metrics: Metrics
  telemetry: ComponentTelemetry
  /** nerve_revoke_outcomes_total: decisions and deliveries alike. */
  outcomes: ReturnType<Metrics['counter']>
  now: () => number
}

/**
 * Decides for each correlation and writes the decisions worth a row (not synced yet); returns the deliveries
 * they made due, or undefined when the batch wrote nothing. Throws when the outbox could not write them:
 * the bus redelivers the batch. The decisions read the correlations' heads only; `wholeOf(i)` gives the
 * whole of `correlations[i]` (parsed then, on the bus: start-sinks.ts), for a revoke that sends it.
 * Without it, the correlations are whole.
 */
export type DecideRevokes = (
  correlations: readonly CorrelationHead[],
  wholeOf?: (index: number) => Correlation,
) => OutboxDelivery[] | undefined

/**
 * Which decisions are written to the outbox (and become outcome records): a revoke that goes ahead (sent
 * or dry-run), and one the rate limits held back, which an operator must see. The other suppressions (the
 * rule does not revoke, the score is below min_score, its incident was revoked already) follow from the
 * config alone, decide the same way again when the bus redelivers, and are counted in
 * nerve_revoke_outcomes_total{status="suppressed",reason}: a row each would cost every correlation a
 * transaction, an fsync and an outcome record on the bus and in the store.
 */
const rateLimited = new Set<string>([
  'rate_limited_agent',
  'rate_limited_global',
  'rate_limited_global_fallback',
])

/**
 * A revoke that was due (its rule revokes, its score reaches min_score) but held back for a protected agent
 * or for want of a target is recorded once per incident, so the store, the console and Elasticsearch say why
 * the agent was not cut off without a row for every later correlation of the incident.
 */
const explainedOnce = new Set<string>(['protected_agent', 'no_targets'])

export function createRevokeDecisions(config: RevokeDecisionsConfig, deps: RevokeOutboxDeps): DecideRevokes {
  const { outbox, log, telemetry, outcomes, now } = deps
  const forgotten = deps.metrics.counter(
    'nerve_revoke_outbox_retention_deleted_rows_total',
    'Decisions, deliveries and outcome records the revoke outbox deleted past its horizon.',
    ['table'],
  )
  // Past this, a decision is read by nothing: the limits look back one period, and the bus redelivers a
  // correlation (whose duplicate check reads it) for bus.retention at most (revoke-outbox.ts forget).
  const { per_agent, global } = config.revoke.rate_limit
  const horizon = Math.max(per_agent.per, global.per, config.redelivery ?? 0)
  const policyConfig = {
    min_score: config.revoke.min_score,
    dry_run: config.revoke.dry_run,
    rate_limit: config.revoke.rate_limit,
    protected_agents: config.agents.filter((a) => a.protected).map((a) => a.id),
    registered_agents: config.agents.map((a) => a.id),
    has_targets: config.targetLabels.length > 0,
  }
  const registeredAgents = new Set(policyConfig.registered_agents)
  // A forgotten revoke counts, like a merge mark, for its incident's rounds only.
  const rebuildPolicy = () =>
    createRevokePolicy(policyConfig, outbox.pastRevokes(), [
      ...outbox.forgottenRevokes(),
      ...outbox.mergedRevokes(),
    ])
  let policy = rebuildPolicy()

  // A suppression is logged once per incident and reason, and recorded then when explainedOnce names it:
  // the later correlations of an incident without a target would repeat the same line and row (bounded:
  // forgotten wholesale past 10,000 incidents; after a restart one more line and row, no harm).
  const seenSuppressions = new Set<string>()
  const firstSuppression = (entry: DecisionEntry, added: string[]) => {
    const key = `${entry.incident_id}:${entry.reason}`
    if (seenSuppressions.has(key)) return false
    if (seenSuppressions.size >= 10_000) seenSuppressions.clear()
    seenSuppressions.add(key)
    added.push(key)
    return true
  }

  // The decision id of the incidents seen lately: a sha256 per correlation otherwise, and an incident gathers
  // many correlations (bounded: forgotten wholesale past 10,000 incidents).
  const decisionIds = new Map<string, string>()
  const decisionIdOf = (incidentId: string) => {
    let id = decisionIds.get(incidentId)
    if (id === undefined) {
      if (decisionIds.size >= 10_000) decisionIds.clear()
      id = revokeDecisionId(incidentId)
      decisionIds.set(incidentId, id)
    }
    return id
  }

  // Only a correlation that may revoke (its rule revokes, its score reaches min_score) can have a decision
  // in the outbox: the others are not looked up, and a batch of them writes and syncs nothing.
  const mayRevoke = (c: CorrelationHead) => c.rule.revoke && c.score >= config.revoke.min_score

  // Decisions accrue only where a batch records them: forgetting twice as many keeps the table at about
  // one horizon's worth, in bounded transactions. A failure here holds no decision up.
  const forgetOld = (recorded: number) => {
    try {
      const deleted = outbox.forget(now() - horizon, 2 * recorded)
      for (const [table, n] of Object.entries(deleted)) if (n > 0) forgotten.inc({ table }, n)
    } catch (err) {
      telemetry.error(errorCodeOf(err), 'retention')
      log.warn(errorFieldsOf(err), 'Could not forget old revoke decisions; will retry.')
    }
  }

  const whole = (
    correlations: readonly CorrelationHead[],
    c: CorrelationHead,
    wholeOf: ((index: number) => Correlation) | undefined,
  ) => (wholeOf ? wholeOf(correlations.indexOf(c)) : (c as Correlation))

  return (correlations, wholeOf) => {
    telemetry.received(correlations.length)
    const already = outbox.decided(correlations.filter(mayRevoke).map((c) => c.id))
    const entries: DecisionEntry[] = []
    /** Suppressions first seen in this batch: forgotten again if the batch is not written. */
    const added: string[] = []
    // The batch's decisions by status and reason, added to the counters once per batch (two labelled
    // counters per correlation cost the main thread 1-2 µs each time).
    const counted = new Map<string, { status: RevokeDecision['status']; reason: string; n: number }>()
    let duplicates = 0
    /** Incidents the batch's merges marked as revoked: kept with its decisions. */
    let merged: MergedRevoke[] = []
    try {
      // When the global limit binds, registered agents and higher scores are decided first.
      merged = decideBatch(policy, correlations, registeredAgents, (c) => {
        if (already.has(c.id)) {
          duplicates++
          return undefined
        }
        already.add(c.id)
        const time = now()
        const decision = policy.decide(c, time)
        const key = `${decision.status}:${decision.reason}`
        const count = counted.get(key)
        if (count) count.n++
        else counted.set(key, { status: decision.status, reason: decision.reason, n: 1 })
        // A later round of an incident (kept alive past the per-agent period) is a revoke of its own, keyed
        // by this correlation. Every suppression the outbox records has a key of its own too
        // (suppressionDecisionId): it forgets them past a horizon, and the incident's key, or the revoke's
        // a redelivery of the correlation may become, would then number a later outcome like one the store
        // still holds. A suppression of a revoked incident is logged under its first key.
        const recorded = rateLimited.has(decision.reason) || explainedOnce.has(decision.reason)
        const ownKey = decision.revoke
          ? decision.round > 0
          : recorded || (decision.reason !== 'incident_already_revoked' && policy.rounds(c.incident.id) > 0)
        const decisionId =
          recorded && !decision.revoke
            ? suppressionDecisionId(c.incident.id, c.id)
            : ownKey
              ? revokeDecisionId(c.incident.id, c.id)
              : decisionIdOf(c.incident.id)
        const sends = decision.status === 'pending'
        const entry: DecisionEntry = {
          correlation_id: c.id,
          decision_id: decisionId,
          incident_id: c.incident.id,
          agent_id: c.agent.id,
          status: decision.status,
          reason: decision.reason,
          time,
          targets: sends ? [...config.targetLabels] : [],
          ...(sends
            ? { body: JSON.stringify(buildRevokeEvent(whole(correlations, c, wholeOf), decisionId, time)) }
            : {}),
        }
        const first = decision.revoke || firstSuppression(entry, added)
        if (first) logRevokeOutcome(log, entry)
        if (
          decision.revoke ||
          rateLimited.has(decision.reason) ||
          (first && explainedOnce.has(decision.reason))
        )
          entries.push(entry)
        return decision
      })
    } finally {
      if (duplicates > 0) telemetry.discarded(duplicates, 'duplicate')
      for (const { status, reason, n } of counted.values()) {
        outcomes.inc({ status, reason }, n)
        if (status === 'suppressed') telemetry.discarded(n, reason)
      }
    }
    // A merge with a revoked incident is written even in a batch that decides nothing worth a row: only
    // its correlation says so, and the policy rebuilt after a restart or a failed write must know it.
    if (entries.length === 0 && merged.length === 0) return undefined
    let deliveries: OutboxDelivery[]
    try {
      // A mark holds a revoke back for one per-agent period after its incident's last revoke; an older one
      // decides nothing (a later round's key comes from the incident's own revokes), and the watched agent,
      // bridging incident after incident to a revoked one, would otherwise grow the table for good.
      const forgetMarksThrough =
        merged.length > 0 ? now() - config.revoke.rate_limit.per_agent.per : undefined
      deliveries = outbox.recordDecisions(entries, merged, forgetMarksThrough)
    } catch (err) {
      // The policy remembered revokes that were not written: forget them, the bus redelivers the batch
      // (whose merges are learnt again). So are the suppressions first seen here, or the redelivery would
      // not record them.
      policy = rebuildPolicy()
      for (const key of added) seenSuppressions.delete(key)
      telemetry.error(errorCodeOf(err), 'record_decision')
      throw err
    }
    if (entries.length > 0) forgetOld(entries.length)
    return deliveries
  }
}
