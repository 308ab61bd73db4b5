// The revoke dispatcher: correlations in, revoke decisions (revoke-decisions.ts, by revoke-policy.ts)
// written durably to the outbox before the bus commits, then delivered to every target as a signed Standard
// Webhooks POST with a CloudEvents body, retried with backoff (revoke-delivery.ts). Every recorded decision
// and every delivery result becomes a RevokeOutcome published to revokeOutcomesTopic (from the outbox, so
// none is lost on a crash).
import { setTimeout as delay } from 'node:timers/promises'
import type { Bus } from '../bus/bus.ts'
import type { CorrelationHead } from '../bus/topics.ts'
import type { ReadinessCheck } from '../runtime/http-routes.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { Config, Correlation } from '../schemas/types.ts'
import { createRevokeDecisions } from './revoke-decisions.ts'
import { createRevokeDelivery } from './revoke-delivery.ts'
import { openRevokeOutbox } from './revoke-outbox.ts'

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
  /**
   * Decides for each correlation and makes the decisions durable; resolves when the bus may commit. Reads
   * the heads only, and `wholeOf(i)` for a revoke it sends (revoke-decisions.ts); without it, whole ones.
   */
  handle(correlations: readonly CorrelationHead[], wholeOf?: (index: number) => Correlation): Promise<void>
  /** Starts delivering: what the outbox still holds from before a restart, then every new decision. */
  startDelivering(): void
  readiness: ReadinessCheck
  /** Aborts in-flight attempts (they stay pending in the outbox) and closes the outbox; idempotent. */
  close(): Promise<void>
}

export function createRevokeDispatcher(
  config: RevokeDispatcherConfig,
  deps: RevokeDispatcherDeps,
): RevokeDispatcher {
  const log = deps.log.child({ component: 'revoke_dispatcher' })
  const telemetry = deps.metrics.component('revoke_dispatcher')
  const outcomes = deps.metrics.counter('nerve_revoke_outcomes_total', 'Revoke decisions and deliveries.', [
    'status',
    'reason',
  ])
  const outbox = openRevokeOutbox(config.data_dir, log)
  const shared = { outbox, log, metrics: deps.metrics, telemetry, outcomes, now: deps.now }
  const delivery = createRevokeDelivery(config.revoke, {
    ...shared,
    bus: deps.bus,
    sleep: deps.sleep ?? ((ms, signal) => delay(ms, undefined, { signal })),
    random: deps.random ?? Math.random,
  })
  const decide = createRevokeDecisions({ ...config, targetLabels: delivery.targetLabels }, shared)
  let closing: Promise<void> | undefined

  return {
    async handle(correlations, wholeOf) {
      const deliveries = decide(correlations, wholeOf)
      if (deliveries === undefined) return
      delivery.updateGauges()
      // Committed is enough to send (a crashed process still finds the decision); the bus commits the batch
      // only once the decisions are on disk.
      delivery.deliver(deliveries)
      // The outcomes are in the outbox already: publishing them need not hold up the bus commit.
      void delivery.publishOutcomes()
      await outbox.sync()
    },
    startDelivering: delivery.start,
    readiness: delivery.readiness,
    close() {
      closing ??= (async () => {
        await delivery.close()
        await outbox.close()
      })()
      return closing
    },
  }
}
