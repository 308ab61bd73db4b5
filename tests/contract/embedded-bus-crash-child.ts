// Child process for the SIGKILL test in embedded-bus.test.ts: publishes numbered records forever while
// consuming them as one group, journalling each handled record before its batch's handler resolves (so
// before the commit) and each acknowledged publish. The parent kills it at a random point.
// Usage: node --import tsx embedded-bus-crash-child.ts <dataDir> <topic> <group> <handledFile> <publishedFile>
import { appendFileSync } from 'node:fs'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { createEmbeddedBus } from '../../bus/embedded-bus.ts'
import { createSilentLogger } from '../../runtime/logger.ts'
import { createMetrics } from '../../runtime/metrics.ts'
import { type Item, records } from './bus-records.ts'

const [dataDir, topicName, group, handledFile, publishedFile] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
]
const topic = { name: topicName }
const bus = createEmbeddedBus(
  { dataDir, partitions: 4, retentionMs: 86_400_000, maxBatch: 7 },
  { log: createSilentLogger(), metrics: createMetrics() },
)

await bus.subscribe<Item>(topic, group, async (batch) => {
  for (const record of batch) {
    appendFileSync(handledFile, `${record.value.seq}\n`)
    await yieldToLoop()
  }
})

let published = 0
for (;;) {
  const count = 1 + Math.floor(Math.random() * 20)
  await bus.publish(topic, records(count, 9, published))
  published += count
  appendFileSync(publishedFile, `${published}\n`)
}
