// A partition that goes quiet on Kafka: the correlator saves its last records on its timer (max_interval)
// after the last batch, and the group's committed offset must follow without waiting for another batch,
// or Kafka's own lag tools (kafka-consumer-groups.sh, Burrow) show up to max_records − 1 records behind
// for as long as the partition stays quiet, and a restart or a rebalance reads them again. The watched
// agent can choose to go quiet right after its burst. A bound moved outside a batch is fenced as the
// batches' commits are: a partition that moved away is its new owner's to commit.
import { describe, expect, it } from 'vitest'
import type { Topic } from '../../../bus/bus.ts'
import { createKafkaBus, type KafkaBus } from '../../../bus/kafka-bus.ts'
import { kafkaTopicName } from '../../../bus/kafka-config.ts'
import { correlatorStateTopic, eventsTopic } from '../../../bus/topics.ts'
import {
  type CheckpointValue,
  createKeyValueCheckpointStore,
} from '../../../correlate/key-value-checkpoint-store.ts'
import { checkpointKey, correlateGroup, startCorrelate } from '../../../correlate/start-correlate.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { KafkaConfig } from '../../../schemas/types.ts'
import type { Item } from '../../contract/bus-records.ts'
import { records } from '../../contract/bus-records.ts'
import { randomName } from '../../helpers/random-names.ts'
import { createTestRuntime, type TestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { shellBurst } from '../correlate/sample-events.ts'
import { createKafkaDouble, type KafkaDouble } from './kafka-double.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)

const kafkaConfig = (partitions: number): KafkaConfig => ({
  ...loadConfig({ env: { NERVE_KAFKA_BROKERS: 'double:9092' } }).kafka,
  partitions,
})

const open = (double: KafkaDouble, rt: TestRuntime, partitions: number) =>
  createKafkaBus(kafkaConfig(partitions), { ...rt, createClient: double.createClient })

describe('the correlator on Kafka, on a partition that goes quiet after a burst', () => {
  it('brings the group’s committed offset to the log end, with one commit outside the batches', async () => {
    const double = createKafkaDouble()
    const rt = createTestRuntime()
    const bus = await open(double, rt, 3)
    const log = await bus.openKeyValueLog<CheckpointValue>(correlatorStateTopic)
    // The default cadence: a save every 2,000 records or 1 s.
    const stage = await startCorrelate(loadConfig(), {
      bus,
      log: rt.log,
      metrics: rt.metrics,
      checkpoints: createKeyValueCheckpointStore(log, checkpointKey),
    })
    // One agent's burst of 2,500 shells, a second apart: all on its one partition.
    const burst = shellBurst('e-burst', 2_500, T0)
    for (let i = 0; i < burst.length; i += 500) await bus.publish(eventsTopic, burst.slice(i, i + 500))
    const topic = kafkaTopicName(kafkaConfig(3), eventsTopic)
    const partition = double.log(topic).findIndex((records) => records.length === 2_500)
    expect(partition).toBeGreaterThanOrEqual(0)

    // Then nothing: the timer's save takes the last 500, and the group's commit follows.
    await waitFor(() => double.committed(correlateGroup, topic, partition) === 2_500, {
      what: 'the group’s commit to reach the log end',
    })
    const outside = () => double.commits.filter((c) => c.partition === partition && !c.inBatch)
    expect(outside().map((c) => c.offset)).toEqual([2_500])
    // Nothing more moves: stopping saves nothing and commits nothing more.
    await stage.close()
    expect(outside()).toHaveLength(1)
    await log.close()
    await bus.close()
  })
})

describe('a commit bound moved outside a batch (Subscription.advance) on Kafka', () => {
  /** A member whose handler saves nothing in its batches: every bound it resolves with is 0. */
  const holdingBack = async (double: KafkaDouble, topic: Topic<Item>, group: string) => {
    const bus = await open(double, createTestRuntime(), 2)
    const handled = new Map<number, number[]>()
    const sub = await bus.subscribe(topic, group, async (batch) => {
      for (const r of batch) handled.set(r.partition, [...(handled.get(r.partition) ?? []), r.offset])
      return { commit: 0 }
    })
    return { bus, sub, handled }
  }

  it('commits up to it, never past the records handled, never back, and once per move', async () => {
    const double = createKafkaDouble()
    const topic: Topic<Item> = { name: randomName('advance') }
    const group = randomName('group')
    const a = await holdingBack(double, topic, group)
    await a.bus.publish(topic, records(20, 1))
    const partition = double.log(topic.name).findIndex((records) => records.length === 20)
    await waitFor(() => a.handled.get(partition)?.length === 20, { what: 'the 20 records handled' })
    expect(double.committed(group, topic.name, partition) ?? 0).toBe(0)

    await a.sub.advance?.(partition, 12)
    expect(double.committed(group, topic.name, partition)).toBe(12)
    await a.sub.advance?.(partition, 12)
    await a.sub.advance?.(partition, 5)
    expect(double.committed(group, topic.name, partition)).toBe(12)
    await a.sub.advance?.(partition, 50)
    expect(double.committed(group, topic.name, partition)).toBe(20)
    const outside = double.commits.filter((c) => !c.inBatch).map((c) => c.offset)
    expect(outside).toEqual([12, 20])
    await a.bus.close()
  })

  it('commits nothing of a partition that moved to another member, nor while the group rebalances', async () => {
    const double = createKafkaDouble()
    const topic: Topic<Item> = { name: randomName('advance-moved') }
    const group = randomName('group')
    // Member A holds both partitions and handles the records of each, saving nothing yet.
    const a = await holdingBack(double, topic, group)
    await a.bus.publish(topic, records(40, 8))
    const sizes = double.log(topic.name).map((records) => records.length)
    expect(sizes.every((n) => n > 0)).toBe(true)
    await waitFor(() => [0, 1].every((p) => a.handled.get(p)?.length === sizes[p]), {
      what: 'A to handle both partitions',
    })

    // A rebalance begins: nothing is surely A's.
    double.startRebalance(group)
    await a.sub.advance?.(0, 3)
    expect(double.commits.filter((c) => !c.inBatch)).toEqual([])

    // Member B joins: partition 1 is B's now, partition 0 stays A's.
    const b = await holdingBack(double, topic, group)
    await waitFor(() => a.sub.owns?.(0) && !a.sub.owns?.(1), { what: 'A to keep partition 0 only' })
    await a.sub.advance?.(1, 3)
    await a.sub.advance?.(0, 3)
    expect(double.commits.filter((c) => !c.inBatch).map((c) => [c.partition, c.offset])).toEqual([[0, 3]])
    expect(double.committed(group, topic.name, 1) ?? 0).toBe(0)
    await Promise.all([a.bus.close(), b.bus.close()])
  })
})

describe('a commit bound moved outside a batch, waiting its turn while the partition moves', () => {
  const subscribeHoldingBack = (bus: KafkaBus, topic: Topic<Item>, group: string) => {
    /** Per partition, the records handled (again after a move). */
    const handled = new Map<number, number>()
    const sub = bus.subscribe(topic, group, async (batch) => {
      for (const r of batch) handled.set(r.partition, (handled.get(r.partition) ?? 0) + 1)
      return { commit: 0 }
    })
    return { handled, sub }
  }
  const outsideCommits = (double: KafkaDouble) =>
    double.commits.filter((c) => !c.inBatch).map((c) => [c.partition, c.offset])

  it('is not committed by the old member once the partition moved to another', async () => {
    const double = createKafkaDouble()
    const topic: Topic<Item> = { name: randomName('advance-turn') }
    const group = randomName('group')
    const busA = await open(double, createTestRuntime(), 2)
    const a = subscribeHoldingBack(busA, topic, group)
    const subA = await a.sub
    await busA.publish(topic, records(40, 8))
    const sizes = double.log(topic.name).map((records) => records.length)
    await waitFor(() => [0, 1].every((p) => a.handled.get(p) === sizes[p]), { what: 'both handled' })

    // Partition 1's checkpoint was saved up to offset 3, then up to 6: the first commit is on the wire
    // when the partition moves to member B; the second waits its turn behind it.
    const wire = double.holdCommits()
    const onTheWire = subA.advance?.(1, 3)
    await waitFor(() => wire.held() === 1, { what: 'the first commit on the wire' })
    const waiting = subA.advance?.(1, 6)
    const busB = await open(double, createTestRuntime(), 2)
    await subscribeHoldingBack(busB, topic, group).sub
    await waitFor(() => subA.owns?.(0) && !subA.owns?.(1), { what: 'partition 1 to move to B' })
    wire.release()
    await Promise.all([onTheWire, waiting])
    expect(outsideCommits(double)).toEqual([[1, 3]])
    await Promise.all([busA.close(), busB.close()])
  })

  it('is not committed once the partition went away and came back to the same member', async () => {
    const double = createKafkaDouble()
    const topic: Topic<Item> = { name: randomName('advance-back') }
    const group = randomName('group')
    const bus = await open(double, createTestRuntime(), 1)
    const a = subscribeHoldingBack(bus, topic, group)
    const sub = await a.sub
    await bus.publish(topic, records(10, 1))
    await waitFor(() => a.handled.get(0) === 10, { what: 'the 10 records handled' })

    const wire = double.holdCommits()
    const onTheWire = sub.advance?.(0, 2)
    await waitFor(() => wire.held() === 1, { what: 'the first commit on the wire' })
    const waiting = sub.advance?.(0, 5)
    // The broker drops the member (it missed heartbeats); it learns so from its next heartbeat, joins
    // again as a new member and is given the partition back, restored anew from the group's commit.
    double.evict(group)
    await waitFor(() => sub.owns?.(0) && a.handled.get(0) === 20, {
      what: 'the partition back, handled again',
    })
    wire.release()
    await Promise.all([onTheWire, waiting])
    expect(outsideCommits(double)).toEqual([[0, 2]])
    await bus.close()
  })
})
