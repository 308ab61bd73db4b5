// The floor under a Kafka member's commits: a partition it was just assigned starts from the group's
// committed offset, and no commit this member sends may go below it (nor below what it committed itself
// since). Without it, a handler (or an advance) asking a bound below the floor, such as a handler that has
// saved nothing yet in this assignment, set the group's commit back: the next owner read the whole retained
// partition again, and the live records behind that backlog (an agent could time its burst to a deploy).
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

const kafkaConfig = (partitions: number): KafkaConfig => ({
  ...loadConfig({ env: { NERVE_KAFKA_BROKERS: 'double:9092' } }).kafka,
  partitions,
})

const open = (double: KafkaDouble) =>
  createKafkaBus(kafkaConfig(2), { ...createTestRuntime(), createClient: double.createClient })

describe('a Kafka member’s commits, in a partition’s new assignment', () => {
  it('never go below the group’s commit it started from, whatever bound the handler asks', async () => {
    const double = createKafkaDouble()
    const topic: Topic<Item> = { name: randomName('floor') }
    const group = randomName('group')
    // A first member handles and commits every record: the group's commits are at the log ends.
    const first = await open(double)
    await first.subscribe(topic, group, async () => undefined)
    await first.publish(topic, records(340, 8))
    const ends = double.log(topic.name).map((log) => log.length)
    expect(ends.every((n) => n > 0)).toBe(true)
    await waitFor(() => [0, 1].every((p) => double.committed(group, topic.name, p) === ends[p]), {
      what: 'both partitions committed to their ends',
    })
    await first.close()
    const before = double.commits.length

    // The next member (a restart) has saved nothing in this assignment: every bound it asks is 0.
    const second = await open(double)
    const handled = new Map<number, number>()
    const sub = await second.subscribe(topic, group, async (batch) => {
      for (const r of batch) handled.set(r.partition, (handled.get(r.partition) ?? 0) + 1)
      return { commit: 0 }
    })
    await second.publish(topic, records(40, 8, 340))
    const sizes = double.log(topic.name).map((log) => log.length)
    await waitFor(() => [0, 1].every((p) => handled.get(p) === (sizes[p] ?? 0) - (ends[p] ?? 0)), {
      what: 'the new records handled',
    })
    await sub.advance?.(0, 1)
    await sub.advance?.(1, (ends[1] ?? 0) - 1)
    expect([0, 1].map((p) => double.committed(group, topic.name, p))).toEqual(ends)
    // Not even for a moment: no commit the second member sent went below the floor.
    const sent = double.commits.slice(before)
    expect(sent.filter((c) => c.offset < (ends[c.partition] ?? 0))).toEqual([])
    await second.close()
  })
})
