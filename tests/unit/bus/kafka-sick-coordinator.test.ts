// A commit outside a batch (Subscription.advance) that stays on the wire: kafkajs's runner retries
// consumer.commitOffsets up to 8 times (a coordinator failover: ~40 s of backoff, up to 30 s an attempt).
// The partition's next batch commit waits its turn behind it, and kafkajs runs one eachBatch at a time:
// the member must go on heartbeating meanwhile (or the group drops it and rebalances), and a stop must not
// wait through the whole chain.
import { describe, expect, it } from 'vitest'
import type { Topic } from '../../../bus/bus.ts'
import { createKafkaBus } from '../../../bus/kafka-bus.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { KafkaConfig } from '../../../schemas/types.ts'
import { type Item, records } from '../../contract/bus-records.ts'
import { randomName } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { createKafkaDouble, type KafkaDouble } from './kafka-double.ts'

/** The shortest session timeout a member takes (6 s): heartbeats every 2 s. */
const kafkaConfig = (partitions: number): KafkaConfig => ({
  ...loadConfig({ env: { NERVE_KAFKA_BROKERS: 'double:9092' } }).kafka,
  partitions,
  session_timeout: 6_000,
})

/** One member of a 2-partition topic that saves nothing in its batches: only advance moves its commit. */
async function memberHoldingBack(double: KafkaDouble) {
  const bus = await createKafkaBus(kafkaConfig(2), {
    ...createTestRuntime(),
    createClient: double.createClient,
  })
  const topic: Topic<Item> = { name: randomName('sick-coordinator') }
  const group = randomName('group')
  const handled = new Map<number, number>()
  const sub = await bus.subscribe(topic, group, async (batch) => {
    for (const r of batch) handled.set(r.partition, (handled.get(r.partition) ?? 0) + 1)
    return { commit: 0 }
  })
  await bus.publish(topic, records(40, 8))
  const sizes = double.log(topic.name).map((log) => log.length)
  await waitFor(() => [0, 1].every((p) => handled.get(p) === sizes[p]), { what: 'both partitions handled' })
  return { bus, topic, group, sub, handled }
}

const heartbeats = (double: KafkaDouble) => double.consumers.reduce((n, c) => n + c.heartbeats, 0)

describe('a Kafka member whose outside commit stays on the wire', () => {
  it('goes on heartbeating while a batch’s commit waits its turn behind it', async () => {
    const double = createKafkaDouble()
    const { bus, topic, sub, handled } = await memberHoldingBack(double)
    const wire = double.holdCommits()
    const advanced = sub.advance?.(0, 3)
    await waitFor(() => wire.held() === 1, { what: 'the outside commit on the wire' })
    // The agent sends on: partition 0's next batch is handled, and its commit waits behind the one held.
    const before = handled.get(0) ?? 0
    await bus.publish(topic, records(40, 8))
    await waitFor(() => (handled.get(0) ?? 0) > before, { what: 'partition 0’s next batch' })
    const beats = heartbeats(double)
    await waitFor(() => heartbeats(double) > beats, { what: 'a heartbeat while the commit waits' })
    wire.release()
    await advanced
    const sizes = double.log(topic.name).map((log) => log.length)
    await waitFor(() => [0, 1].every((p) => handled.get(p) === sizes[p]), { what: 'both handled' })
    await bus.close()
  })

  it('stops within the session timeout, committing nothing more of that partition', async () => {
    const double = createKafkaDouble()
    const { bus, topic, group, sub, handled } = await memberHoldingBack(double)
    const wire = double.holdCommits()
    void sub.advance?.(0, 3)
    await waitFor(() => wire.held() === 1, { what: 'the outside commit on the wire' })
    const before = handled.get(0) ?? 0
    await bus.publish(topic, records(40, 8))
    await waitFor(() => (handled.get(0) ?? 0) > before, { what: 'partition 0’s next batch' })
    // The coordinator never answers: the stop gives up the commit waiting behind the held one.
    await bus.close()
    expect(double.committed(group, topic.name, 0) ?? 0).toBe(0)
    wire.release()
  })
})
