// The revoke dispatcher: correlations in, revoke decisions (revoke-policy.ts) written durably to the
// outbox before the bus commits, then delivered to every target as a signed Standard Webhooks POST with a
// CloudEvents body, retried with backoff, one p-queue per target. Every recorded decision (see rateLimited) and
// every delivery result becomes a RevokeOutcome published to revokeOutcomesTopic (from the outbox, so none
// is lost on a crash).
import { setTimeout as delay } from 'node:timers/promises'
import PQueue from 'p-queue'
import type { Bus } from '../bus/bus.ts'
import { revokeOutcomesTopic } from '../bus/topics.ts'
import { errorCodeOf } from '../runtime/errors.ts'
import type { ReadinessCheck } from '../runtime/http-server.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { Config, Correlation } from '../schemas/types.ts'
import { logRevokeOutcome } from './operator-log-lines.ts'
import {
  type DecisionEntry,
  type NewOutcome,
  type OutboxDelivery,
  openRevokeOutbox,
} from './revoke-outbox.ts'
import { buildRevokeEvent, revokeContentType } from './revoke-payload.ts'
import {
  createRevokePolicy,
  decideBatch,
  type MergedRevoke,
  type RevokeDecision,
  revokeDecisionId,
  suppressionDecisionId,
} from './revoke-policy.ts'
import { nextStep } from './revoke-retry.ts'
import { signWebhook } from './standard-webhooks-signature.ts'
import { createWebhookTarget, type WebhookTarget } from './webhook-target.ts'

/** Consecutive failed attempts after which a target counts as unhealthy in /readyz and /metrics. */
export const unhealthyAfterFailures = 3

export type RevokeDispatcherConfig = {
  data_dir: string
  revoke: Config['revoke']
  agents: Config['agents']
  /** How long the bus may deliver a correlation again (bus.retention): the outbox's duplicate check lasts as long. */
  redelivery?: Config['bus']['retention']
}

export type RevokeDispatcherDeps = {
  bus: Bus
  log: Logger
  metrics: Metrics
  now: () => number
  /** Waits between attempts; rejects or resolves early when `signal` aborts (tests pass fake time). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
  random?: () => number
}

export type RevokeDispatcher = {
  /** Decides for each correlation and makes the decisions durable; resolves when the bus may commit. */
  handle(correlations: readonly Correlation[]): Promise<void>
  /** Starts delivering: what the outbox still holds from before a restart, then every new decision. */
  startDelivering(): void
  readiness: ReadinessCheck
  /** Aborts in-flight attempts (they stay pending in the outbox) and closes the outbox; idempotent. */
  close(): Promise<void>
}

type TargetState = WebhookTarget & { queue: PQueue; failures: number; disabled?: string }

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

export function createRevokeDispatcher(
  config: RevokeDispatcherConfig,
  deps: RevokeDispatcherDeps,
): RevokeDispatcher {
  const { bus, now } = deps
  const log = deps.log.child({ component: 'revoke_dispatcher' })
  const telemetry = deps.metrics.component('revoke_dispatcher')
  const sleep = deps.sleep ?? ((ms, signal) => delay(ms, undefined, { signal }))
  const random = deps.random ?? Math.random
  const outcomes = deps.metrics.counter('nerve_revoke_outcomes_total', 'Revoke decisions and deliveries.', [
    'status',
    'reason',
  ])
  const healthy = deps.metrics.gauge('nerve_revoke_target_healthy', '1 when a webhook target delivers.', [
    'target',
  ])
  const forgotten = deps.metrics.counter(
    'nerve_revoke_outbox_retention_deleted_rows_total',
    'Decisions, deliveries and outcome records the revoke outbox deleted past its horizon.',
    ['table'],
  )
  // Past this, a decision is read by nothing: the limits look back one period, and the bus redelivers a
  // correlation (whose duplicate check reads it) for bus.retention at most (revoke-outbox.ts forget).
  const { per_agent, global } = config.revoke.rate_limit
  const horizon = Math.max(per_agent.per, global.per, config.redelivery ?? 0)
  const pendingGauge = deps.metrics.gauge(
    'nerve_revoke_outbox_pending_deliveries',
    'Webhook deliveries waiting in the outbox.',
  )

  const outbox = openRevokeOutbox(config.data_dir)
  const targets = new Map<string, TargetState>()
  const disabled = outbox.disabledTargets()
  for (const target of config.revoke.webhooks) {
    const t = createWebhookTarget(target)
    targets.set(t.label, {
      ...t,
      queue: new PQueue({ concurrency: t.concurrency }),
      failures: 0,
      disabled: disabled.get(t.label),
    })
    if (t.keys.length === 0) log.warn({ target: t.label }, 'Revoke webhook target has no secret: unsigned.')
  }
  const policyConfig = {
    min_score: config.revoke.min_score,
    dry_run: config.revoke.dry_run,
    rate_limit: config.revoke.rate_limit,
    protected_agents: config.agents.filter((a) => a.protected).map((a) => a.id),
    registered_agents: config.agents.map((a) => a.id),
    has_targets: targets.size > 0,
  }
  const registeredAgents = new Set(policyConfig.registered_agents)
  // A forgotten revoke counts, like a merge mark, for its incident's rounds only.
  const rebuildPolicy = () =>
    createRevokePolicy(policyConfig, outbox.pastRevokes(), [
      ...outbox.forgottenRevokes(),
      ...outbox.mergedRevokes(),
    ])
  let policy = rebuildPolicy()
  const abort = new AbortController()
  let delivering = false
  let closed = false
  let closing: Promise<void> | undefined

  const isHealthy = (t: TargetState) => !t.disabled && t.failures < unhealthyAfterFailures
  const updateGauges = () => {
    for (const t of targets.values()) healthy.set({ target: t.label }, isHealthy(t) ? 1 : 0)
    pendingGauge.set(outbox.pendingCount())
  }
  updateGauges()

  let publishing: Promise<void> = Promise.resolve()
  const publishOutcomes = (): Promise<void> => {
    publishing = publishing.then(async () => {
      try {
        while (!closed) {
          const batch = outbox.unpublishedOutcomes(500)
          if (batch.outcomes.length === 0) return
          await bus.publish(
            revokeOutcomesTopic,
            batch.outcomes.map((o) => ({ key: o.agent_id, value: o })),
          )
          outbox.markPublished(batch.through)
        }
      } catch (err) {
        // They stay in the outbox: published on the next try, or after a restart.
        telemetry.error(errorCodeOf(err), 'publish_outcomes')
        log.warn({ error_code: errorCodeOf(err) }, 'Could not publish revoke outcomes; will retry.')
        sleep(1000, abort.signal).then(publishOutcomes, () => {})
      }
    })
    return publishing
  }

  const enqueue = (target: TargetState, delivery: OutboxDelivery) => {
    if (closed) return
    target.queue
      .add(() => attempt(target, delivery))
      .catch((err: unknown) => {
        // The outbox could not record the attempt: it stays pending and is tried again after a restart.
        telemetry.error(errorCodeOf(err), 'deliver')
        log.error({ err, decision_id: delivery.decision_id, target: target.label }, 'Revoke delivery failed.')
      })
  }
  const schedule = (target: TargetState, delivery: OutboxDelivery) => {
    const wait = delivery.next_attempt_at - now()
    if (wait <= 0) return enqueue(target, delivery)
    sleep(wait, abort.signal).then(
      () => enqueue(target, delivery),
      () => {},
    )
  }

  const finish = (
    target: string,
    delivery: OutboxDelivery,
    state: 'sent' | 'failed' | 'pending',
    outcome: Pick<NewOutcome, 'reason' | 'attempts'> & { detail?: string; http_status?: number },
    nextAttemptAt = now(),
  ) => {
    const time = now()
    outbox.updateDelivery(
      delivery,
      { state, attempts: outcome.attempts, next_attempt_at: nextAttemptAt },
      {
        decision_id: delivery.decision_id,
        time,
        correlation_id: delivery.correlation_id,
        incident_id: delivery.incident_id,
        agent_id: delivery.agent_id,
        status: state,
        target,
        ...outcome,
      },
    )
    outcomes.inc({ status: state, reason: outcome.reason })
    logRevokeOutcome(log, { ...delivery, status: state, target, ...outcome })
    updateGauges()
    void publishOutcomes()
  }

  const attempt = async (target: TargetState, delivery: OutboxDelivery): Promise<void> => {
    if (closed) return
    if (target.disabled) {
      telemetry.discarded(1, 'target_disabled')
      return finish(target.label, delivery, 'failed', {
        reason: 'target_disabled',
        attempts: delivery.attempts,
      })
    }
    const attempts = delivery.attempts + 1
    const timestamp = Math.floor(now() / 1000)
    const headers: Record<string, string> = {
      'content-type': revokeContentType,
      'user-agent': 'nerve-revoke',
      'webhook-id': delivery.decision_id,
      'webhook-timestamp': String(timestamp),
    }
    if (target.keys.length > 0) {
      headers['webhook-signature'] = signWebhook(target.keys, delivery.decision_id, timestamp, delivery.body)
    }
    const result = await target.post(delivery.body, headers, abort.signal)
    // Shutting down mid-request: the delivery stays pending and is sent again after the restart.
    if (result === 'aborted' || closed) return
    const step = nextStep(result, attempts, {
      now: now(),
      maxAttempts: config.revoke.max_attempts,
      maxBackoffMs: config.revoke.max_backoff,
      random,
    })
    const status = 'status' in result ? { http_status: result.status } : {}
    if (step.state === 'sent') {
      target.failures = 0
      telemetry.sent(1)
    } else {
      target.failures++
      const retriable = step.state === 'pending' || step.reason === 'max_attempts'
      telemetry.error(retriable ? 'SINK_UNAVAILABLE' : 'SINK_REJECTED', 'deliver')
    }
    if (step.state === 'failed') {
      if (step.disableTarget) {
        target.disabled = step.reason
        outbox.disableTarget(target.label, now(), step.reason)
      }
    }
    const next = step.state === 'pending' ? now() + step.retryInMs : now()
    const detail = step.state === 'failed' && step.detail ? { detail: step.detail } : {}
    finish(target.label, delivery, step.state, { reason: step.reason, attempts, ...status, ...detail }, next)
    if (step.state === 'pending') schedule(target, { ...delivery, attempts, next_attempt_at: next })
  }

  const deliver = (deliveries: readonly OutboxDelivery[]) => {
    for (const delivery of deliveries) {
      const target = targets.get(delivery.target)
      if (target) schedule(target, delivery)
    }
  }

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
  const mayRevoke = (c: Correlation) => c.rule.revoke && c.score >= config.revoke.min_score

  // Decisions accrue only where a batch records them: forgetting twice as many keeps the table at about
  // one horizon's worth, in bounded transactions. A failure here holds no decision up.
  const forgetOld = (recorded: number) => {
    try {
      const deleted = outbox.forget(now() - horizon, 2 * recorded)
      for (const [table, n] of Object.entries(deleted)) if (n > 0) forgotten.inc({ table }, n)
    } catch (err) {
      telemetry.error(errorCodeOf(err), 'retention')
      log.warn({ error_code: errorCodeOf(err) }, 'Could not forget old revoke decisions; will retry.')
    }
  }

  const handle = async (correlations: readonly Correlation[]) => {
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
          targets: sends ? [...targets.values()].map((t) => t.label) : [],
          ...(sends ? { body: JSON.stringify(buildRevokeEvent(c, decisionId, time)) } : {}),
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
    if (entries.length === 0 && merged.length === 0) return
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
    updateGauges()
    // Committed is enough to send (a crashed process still finds the decision); the bus commits the batch
    // only once the decisions are on disk.
    if (delivering) deliver(deliveries)
    // The outcomes are in the outbox already: publishing them need not hold up the bus commit.
    void publishOutcomes()
    await outbox.sync()
  }

  return {
    handle,
    startDelivering() {
      if (delivering) return
      delivering = true
      const pending = outbox.pendingDeliveries()
      for (const delivery of pending) {
        const target = targets.get(delivery.target)
        if (target) continue
        // The target left the config while this delivery waited: record it rather than keep it forever.
        finish(delivery.target, delivery, 'failed', {
          reason: 'target_removed',
          attempts: delivery.attempts,
        })
      }
      deliver(pending)
      void publishOutcomes()
    },
    readiness: () => {
      const bad = [...targets.values()].filter((t) => !isHealthy(t))
      if (bad.length === 0) return { ok: true }
      const detail = bad.map((t) => `${t.label}: ${t.disabled ?? `${t.failures} failed attempts`}`).join('; ')
      return { ok: false, detail }
    },
    close() {
      closing ??= (async () => {
        closed = true
        abort.abort()
        for (const t of targets.values()) t.queue.clear()
        await Promise.all([...targets.values()].map((t) => t.queue.onIdle()))
        await publishing
        for (const t of targets.values()) t.close()
        await outbox.close()
      })()
      return closing
    },
  }
}
