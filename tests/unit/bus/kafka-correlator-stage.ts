// The correlator on the kafkajs double, as `nerve run` starts it on Kafka (its checkpoints in the
// compacted key-value log), saving every 2,000 records and, before a stop, never on its timer. For the
// tests of a clean stop: `saves` may stand between the correlator and its checkpoint store (a slow log).
import type { Bus } from '../../../bus/bus.ts'
import { createKafkaBus } from '../../../bus/kafka-bus.ts'
import { kafkaTopicName } from '../../../bus/kafka-config.ts'
import { correlatorStateTopic, eventsTopic } from '../../../bus/topics.ts'
import type { CheckpointStore } from '../../../correlate/checkpoint-store.ts'
import {
  type CheckpointValue,
  createKeyValueCheckpointStore,
} from '../../../correlate/key-value-checkpoint-store.ts'
import { checkpointKey, correlateGroup, startCorrelate } from '../../../correlate/start-correlate.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { KafkaConfig } from '../../../schemas/types.ts'
import { createTestRuntime, type TestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { shellBurst } from '../correlate/sample-events.ts'
import type { KafkaDouble } from './kafka-double.ts'

/** The shortest session timeout a member takes (6 s), so that a stop's budget runs out soon. */
export const kafkaConfig = (partitions: number): KafkaConfig => ({
  ...loadConfig({ env: { NERVE_KAFKA_BROKERS: 'double:9092' } }).kafka,
  partitions,
  session_timeout: 6_000,
})

export const openBus = (double: KafkaDouble, rt: TestRuntime, partitions: number) =>
  createKafkaBus(kafkaConfig(partitions), { ...rt, createClient: double.createClient })

/** The events topic's name on Kafka. */
export const eventsTopicName = kafkaTopicName(kafkaConfig(1), eventsTopic)

/** `around` may stand between the correlator and the bus (a subscription that stops late). */
export async function startCorrelatorOnKafka(
  double: KafkaDouble,
  saves: (store: CheckpointStore) => CheckpointStore = (store) => store,
  around: (bus: Bus) => Bus = (bus) => bus,
) {
  const rt = createTestRuntime()
  const bus = await openBus(double, rt, 1)
  const log = await bus.openKeyValueLog<CheckpointValue>(correlatorStateTopic)
  const config = loadConfig()
  const stage = await startCorrelate(
    {
      ...config,
      correlation: { ...config.correlation, checkpoint: { max_records: 2_000, max_interval: 600_000 } },
    },
    {
      bus: around(bus),
      log: rt.log,
      metrics: rt.metrics,
      checkpoints: saves(createKeyValueCheckpointStore(log, checkpointKey)),
    },
  )
  /** Records the correlator was handed (those it skips as already in its checkpoint included). */
  const received = () => rt.metricValue('nerve_component_received_events_total', { component: 'correlator' })
  /** Publishes 2,500 events of one agent: resolves once all are handled and the first 2,000 saved and committed. */
  const handledAndSaved = async (eventIds: string) => {
    await bus.publish(eventsTopic, shellBurst(eventIds, 2_500, Date.UTC(2024, 7, 1, 13, 30)))
    await waitFor(
      async () =>
        double.committed(correlateGroup, eventsTopicName, 0) === 2_000 && (await received()) === 2_500,
      { what: 'the 2,500 handled, the first 2,000 saved and committed' },
    )
  }
  const close = async () => {
    await stage.close()
    await log.close()
    await bus.close()
  }
  return { rt, bus, stage, received, handledAndSaved, close }
}
