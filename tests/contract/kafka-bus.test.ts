// The bus contract on a real Kafka cluster. Runs when NERVE_KAFKA_BROKERS is set (docker compose up -d kafka);
// otherwise skipped with the reason printed, so `npm test` stays green without a broker.
import { describe } from 'vitest'
import { kafkaHarness, kafkaSkipReason } from '../integration/kafka-harness.ts'
import { busContract } from './bus-contract.ts'

const skip = kafkaSkipReason()

// Group joins and the backoff of a refused batch take seconds on a real cluster.
describe.skipIf(skip !== undefined)('kafka bus on a real cluster', { timeout: 120_000 }, () => {
  busContract('kafka', kafkaHarness, { timeoutMs: 60_000 })
})
