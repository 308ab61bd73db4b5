// Delivering recorded revokes: every decision the outbox holds for a target is POSTed to it, signed
// (Standard Webhooks) with a CloudEvents body, one p-queue per target, retried with backoff (revoke-retry.ts).
// Every attempt's result is written to the outbox with its outcome record, then published from there to
// revokeOutcomesTopic, so none is lost on a crash.
import PQueue from 'p-queue'
import type { Bus } from '../bus/bus.ts'
import { revokeOutcomesTopic } from '../bus/topics.ts'
import { errorCodeOf, errorFieldsOf } from '../runtime/errors.ts'
import type { ReadinessCheck } from '../runtime/http-routes.ts'
import type { Config, WebhookTargetConfig } from '../schemas/types.ts'
import { logRevokeOutcome } from './operator-log-lines.ts'
import type { RevokeOutboxDeps } from './revoke-decisions.ts'
import type { DisabledTarget, NewOutcome, OutboxDelivery } from './revoke-outbox.ts'
import { revokeContentType } from './revoke-payload.ts'
import { nextStep } from './revoke-retry.ts'
import { signWebhook } from './standard-webhooks-signature.ts'
import { compareFingerprint, targetFingerprint } from './target-fingerprint.ts'
import { createWebhookTarget, type WebhookTarget } from './webhook-target.ts'

/** Consecutive failed attempts after which a target counts as unhealthy in /readyz and /metrics. */
const unhealthyAfterFailures = 3

export type RevokeDeliveryDeps = RevokeOutboxDeps & {
  bus: Bus
  sleep: (ms: number, signal: AbortSignal) => Promise<void>
  random: () => number
}

export type RevokeDelivery = {
  /** The labels of the configured targets, in config order: a revoke that goes ahead is due to each. */
  targetLabels: string[]
  /** Starts delivering: what the outbox still holds from before a restart, then every new decision. */
  start(): void
  /** Schedules newly recorded deliveries (once started; before that, start() finds them in the outbox). */
  deliver(deliveries: readonly OutboxDelivery[]): void
  /** Publishes the outbox's unpublished outcome records to the bus, in order; retried until published. */
  publishOutcomes(): Promise<void>
  /** Sets the targets' health and the pending-deliveries gauges. */
  updateGauges(): void
  readiness: ReadinessCheck
  /** Aborts in-flight attempts (they stay pending in the outbox) and closes the targets; idempotent. */
  close(): Promise<void>
}

/** `entry`: the fingerprint of its config entry (target-fingerprint.ts), kept with it when a 410 disables it. */
type TargetState = WebhookTarget & { entry: string; queue: PQueue; failures: number; disabled?: string }

export function createRevokeDelivery(revoke: Config['revoke'], deps: RevokeDeliveryDeps): RevokeDelivery {
  const { bus, outbox, log, telemetry, outcomes, now, sleep, random } = deps
  const healthy = deps.metrics.gauge('nerve_revoke_target_healthy', '1 when a webhook target delivers.', [
    'target',
  ])
  const pendingGauge = deps.metrics.gauge(
    'nerve_revoke_outbox_pending_deliveries',
    'Webhook deliveries waiting in the outbox.',
  )
  /**
   * Why a target stays disabled, or undefined: a 410 disables it for good, until the operator changes what
   * names it or proves nerve to it (target-fingerprint.ts). One whose fingerprint cannot be compared (an
   * earlier version kept none; the data dir's key was replaced) takes the current one: it stays disabled
   * until that changes. One disabled by the previous version takes the keyed fingerprint in place of its
   * plain hash.
   */
  function stillDisabled(t: WebhookTargetConfig, label: string, entry: string, record?: DisabledTarget) {
    if (!record) return undefined
    const match = compareFingerprint(record.entry, t, outbox.targetKey)
    if (match === 'changed') {
      outbox.enableTarget(label)
      log.info(
        { target: label, reason: record.reason },
        'Revoke webhook target enabled again: its config entry changed since it was disabled.',
      )
      return undefined
    }
    if (match === 'unknown' && record.entry !== null)
      log.warn(
        { target: label, reason: record.reason },
        'Revoke webhook target stays disabled: it was disabled under another revoke-target-key, so a change of its entry since cannot be told; change its entry to enable it.',
      )
    if (record.entry !== entry) outbox.disableTarget(label, record.disabled_at, record.reason, entry)
    return record.reason
  }
  const targets = new Map<string, TargetState>()
  const disabled = outbox.disabledTargets()
  for (const target of revoke.webhooks) {
    const t = createWebhookTarget(target)
    const entry = targetFingerprint(target, outbox.targetKey)
    targets.set(t.label, {
      ...t,
      entry,
      queue: new PQueue({ concurrency: t.concurrency }),
      failures: 0,
      disabled: stillDisabled(target, t.label, entry, disabled.get(t.label)),
    })
    if (t.keys.length === 0)
      log.warn(
        { target: t.label },
        'Revoke webhook target has no secret: its deliveries go unsigned, so its receiver cannot tell them from forged ones.',
      )
  }
  const abort = new AbortController()
  let started = false
  let closed = false

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
        log.warn(errorFieldsOf(err), 'Could not publish revoke outcomes; will retry.')
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
      maxAttempts: revoke.max_attempts,
      maxBackoffMs: revoke.max_backoff,
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
        outbox.disableTarget(target.label, now(), step.reason, target.entry)
      }
    }
    const next = step.state === 'pending' ? now() + step.retryInMs : now()
    const detail = step.state === 'failed' && step.detail ? { detail: step.detail } : {}
    finish(target.label, delivery, step.state, { reason: step.reason, attempts, ...status, ...detail }, next)
    if (step.state === 'pending') schedule(target, { ...delivery, attempts, next_attempt_at: next })
  }

  const scheduleAll = (deliveries: readonly OutboxDelivery[]) => {
    for (const delivery of deliveries) {
      const target = targets.get(delivery.target)
      if (target) schedule(target, delivery)
    }
  }

  let closing: Promise<void> | undefined
  return {
    targetLabels: [...targets.keys()],
    start() {
      if (started) return
      started = true
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
      scheduleAll(pending)
      void publishOutcomes()
    },
    deliver(deliveries) {
      if (started) scheduleAll(deliveries)
    },
    publishOutcomes,
    updateGauges,
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
      })()
      return closing
    },
  }
}
