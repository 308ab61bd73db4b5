// A Kafka bus on the real cluster named by NERVE_KAFKA_BROKERS (`docker compose up -d kafka`), for the
// bus contract and the integration tests. Topics get a random prefix so runs never share state.

import { createKafkaBus, type KafkaBus } from '../../bus/kafka-bus.ts'
import { loadConfig } from '../../runtime/load-config.ts'
import type { KafkaConfig } from '../../schemas/types.ts'
import type { BusHarness } from '../contract/bus-contract.ts'
import { randomName } from '../helpers/random-names.ts'
import { createTestRuntime, type TestRuntime } from '../helpers/test-runtime.ts'

export const kafkaBrokers = process.env.NERVE_KAFKA_BROKERS ?? ''

/** Why the Kafka suites skip, printed once per file; undefined when a broker is configured. */
export function kafkaSkipReason(): string | undefined {
  if (kafkaBrokers) return undefined
  const reason =
    'NERVE_KAFKA_BROKERS is not set: skipping the Kafka suites (docker compose up -d kafka, then ' +
    'NERVE_KAFKA_BROKERS=127.0.0.1:9094 npm run test:integration).'
  console.log(reason)
  return reason
}

export function kafkaTestConfig(overrides: Partial<KafkaConfig> = {}): KafkaConfig {
  const base = loadConfig({ env: { NERVE_KAFKA_BROKERS: kafkaBrokers } }).kafka
  return { ...base, client_id: randomName('nerve-test'), topic_prefix: `${randomName('it')}.`, ...overrides }
}

export const openKafkaBus = (config: KafkaConfig, rt: TestRuntime = createTestRuntime({ level: 'info' })) =>
  createKafkaBus(config, rt)

export async function kafkaHarness({ partitions }: { partitions: number }): Promise<BusHarness> {
  const config = kafkaTestConfig({ partitions })
  let bus: KafkaBus = await openKafkaBus(config)
  return {
    bus,
    reopen: async () => {
      await bus.close()
      bus = await openKafkaBus(config)
      return bus
    },
    cleanup: () => bus.close(),
  }
}
