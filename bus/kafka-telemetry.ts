// What the Kafka bus reports in /metrics: the four component counters (component="kafka_bus"), consumer lag
// per group and partition, rebalances, owned partitions, restore time and key-value log sizes. Labels are
// topic names, group names and partition numbers: all bounded by configuration.
import type { ComponentTelemetry, Metrics } from '../runtime/metrics.ts'

export type ConsumerLabels = { topic: string; group: string }

export type KafkaTelemetry = {
  component: ComponentTelemetry
  /** Records published but not yet committed by this group on this partition (after the last batch). */
  lag(where: ConsumerLabels, partition: number, records: number): void
  /** A partition moved away: its lag is another instance's to report now. */
  forget(where: ConsumerLabels, partition: number): void
  rebalanced(where: ConsumerLabels, ownedPartitions: number): void
  restored(group: string, ms: number): void
  keyValueEntries(topic: string, entries: number): void
}

export function createKafkaTelemetry(metrics: Metrics): KafkaTelemetry {
  const component = metrics.component('kafka_bus')
  const lag = metrics.gauge(
    'nerve_bus_consumer_lag_records',
    'Records published but not yet committed by a subscribed group.',
    ['topic', 'group', 'partition'],
  )
  const rebalances = metrics.counter(
    'nerve_bus_rebalances_total',
    'Consumer group rebalances this instance took part in.',
    ['topic', 'group'],
  )
  const owned = metrics.gauge('nerve_bus_assigned_partitions', 'Partitions this instance owns.', [
    'topic',
    'group',
  ])
  const restore = metrics.histogram(
    'nerve_bus_partition_restore_seconds',
    'Time onAssign() took to restore the state of newly assigned partitions.',
    [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60],
    ['group'],
  )
  const entries = metrics.gauge(
    'nerve_bus_key_value_entries',
    'Keys held by a key-value log read from a compacted topic.',
    ['topic'],
  )
  return {
    component,
    lag: (where, partition, records) =>
      lag.set({ ...where, partition: String(partition) }, Math.max(0, records)),
    forget: (where, partition) => lag.remove({ ...where, partition: String(partition) }),
    rebalanced: (where, ownedPartitions) => {
      rebalances.inc(where)
      owned.set(where, ownedPartitions)
    },
    restored: (group, ms) => restore.observe({ group }, ms / 1000),
    keyValueEntries: (topic, n) => entries.set({ topic }, n),
  }
}
