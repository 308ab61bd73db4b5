// A dry-run revoke dispatcher whose wall clock the test sets: one revoke per agent per hour, 20 an hour in
// all, outcomes on a memory bus. For the outbox's retention and merge-mark tests, which move the clock by hours.
import { revokeOutcomesTopic } from '../../../bus/topics.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { createRevokeDispatcher } from '../../../sinks/revoke-webhook-dispatcher.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { createMemoryBus } from './memory-bus.ts'

export const hour = 3_600_000
export const t0 = Date.UTC(2026, 10, 25, 16, 5)
const defaults = loadConfig()

export type DispatcherOnAClockOptions = {
  /** Where the dispatcher goes to be closed after the test. */
  open: { close(): Promise<void> }[]
  /** How long the bus may deliver a correlation again (the config's bus.retention). */
  redelivery?: number
}

export function dispatcherOnAClock(dataDir: string, at: number, options: DispatcherOnAClockOptions) {
  const clock = { t: at }
  const rt = createTestRuntime({ now: () => clock.t })
  const bus = createMemoryBus()
  const d = createRevokeDispatcher(
    {
      data_dir: dataDir,
      agents: [],
      revoke: {
        ...defaults.revoke,
        dry_run: true,
        rate_limit: { per_agent: { count: 1, per: hour }, global: { count: 20, per: hour } },
      },
      ...(options.redelivery === undefined ? {} : { redelivery: options.redelivery }),
    },
    { bus, log: rt.log, metrics: rt.metrics, now: () => clock.t },
  )
  options.open.push(d)
  d.startDelivering()
  const count = (status: string, reason: string) =>
    rt.metricValue('nerve_revoke_outcomes_total', { status, reason })
  const outcomes = () => bus.published(revokeOutcomesTopic)
  return { d, clock, rt, bus, count, outcomes, published: () => outcomes().length }
}
