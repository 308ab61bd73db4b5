import { defineConfig } from 'vitest/config'

// Two projects keep the suites apart: `unit` needs nothing running (it is what `npm test` runs);
// `integration` talks to real Kafka / Elasticsearch started by docker-compose and skips itself,
// saying why, when NERVE_KAFKA_BROKERS / NERVE_ELASTICSEARCH_URL are not set.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/{unit,contract,replay,architecture,e2e}/**/*.test.ts'],
          testTimeout: 20_000,
          globalSetup: ['tests/helpers/temp-root.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          globalSetup: ['tests/helpers/temp-root.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
