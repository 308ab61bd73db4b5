// Wires the sinks to the bus: the embedded store (correlations and revoke outcomes, group nerve-store),
// the revoke dispatcher (correlations, group nerve-revoke: a batch is committed only once its decisions
// are in the outbox), and returns their read routes, readiness checks and one close().
import type { Bus, Subscription } from '../bus/bus.ts'
import { correlationsTopic, revokeOutcomesTopic } from '../bus/topics.ts'
import type { ReadinessCheck, Route } from '../runtime/http-server.ts'
import type { Logger } from '../runtime/logger.ts'
import type { Metrics } from '../runtime/metrics.ts'
import type { Config } from '../schemas/types.ts'
import { createCorrelationStore } from './correlation-store.ts'
import { createRevokeDispatcher } from './revoke-webhook-dispatcher.ts'

export type SinksDeps = { bus: Bus; log: Logger; metrics: Metrics; now: () => number }

export type Sinks = {
  routes: Route[]
  readiness: Record<string, ReadinessCheck>
  close(): Promise<void>
}

export async function startSinks(config: Config, deps: SinksDeps): Promise<Sinks> {
  const { bus } = deps
  const store = createCorrelationStore({ data_dir: config.data_dir }, { metrics: deps.metrics })
  const dispatcher = createRevokeDispatcher(
    { data_dir: config.data_dir, revoke: config.revoke, agents: config.agents },
    deps,
  )
  const subscriptions: Subscription[] = [
    await bus.subscribe(correlationsTopic, 'nerve-store', async (batch) => {
      store.writeCorrelations(batch.map((r) => r.value))
    }),
    await bus.subscribe(revokeOutcomesTopic, 'nerve-store', async (batch) => {
      store.writeOutcomes(batch.map((r) => r.value))
    }),
    await bus.subscribe(correlationsTopic, 'nerve-revoke', (batch) =>
      dispatcher.handle(batch.map((r) => r.value)),
    ),
  ]
  dispatcher.startDelivering()
  deps.log.info(
    { component: 'sinks', webhooks: config.revoke.webhooks.length, dry_run: config.revoke.dry_run },
    'Sinks started.',
  )

  return {
    routes: store.routes,
    readiness: { revoke_webhooks: dispatcher.readiness },
    async close() {
      for (const subscription of subscriptions) await subscription.stop()
      await dispatcher.close()
      store.close()
    },
  }
}
