// The Kafka bus on a real cluster: the bus contract, state restoration across a rebalance of two instances,
// correlator copies joining and leaving, the raw reader of an external topic, and lag in /metrics. Skipped, saying why, without NERVE_KAFKA_BROKERS.
import { describe, expect, it } from 'vitest'
import type { Topic } from '../../bus/bus.ts'
import type { RawRecord } from '../../bus/kafka-bus.ts'
import { busContract } from '../contract/bus-contract.ts'
import type { Item } from '../contract/bus-records.ts'
import { randomName } from '../helpers/random-names.ts'
import { createTestRuntime } from '../helpers/test-runtime.ts'
import { waitFor } from '../helpers/wait-for.ts'
import { correlateRebalanceScenario } from './kafka-correlate-scenario.ts'
import { kafkaHarness, kafkaSkipReason, kafkaTestConfig, openKafkaBus } from './kafka-harness.ts'
import { restoreScenario } from './kafka-restore-scenario.ts'

const skip = kafkaSkipReason()

describe.skipIf(skip !== undefined)('kafka bus on a real cluster', () => {
  busContract('kafka', kafkaHarness, { timeoutMs: 60_000 })

  it('restores per-partition state on every rebalance: each record once in the checkpoints', async () => {
    const config = kafkaTestConfig({ partitions: 4 })
    await restoreScenario(() => openKafkaBus(config), 90_000)
  })

  it('keeps every correlation while correlator copies join and leave', async () => {
    const config = kafkaTestConfig({ partitions: 4 })
    await correlateRebalanceScenario((rt) => openKafkaBus(config, rt), {
      timeoutMs: 90_000,
      exactlyOnce: false,
    })
  })

  it('reads an external topic of raw CloudTrail bytes and reports lag per partition', async () => {
    const shipperConfig = kafkaTestConfig({ topic_prefix: '' })
    const shipper = await openKafkaBus(shipperConfig)
    const external = randomName('cloudtrail-shipper')
    const body = { Records: [{ eventID: 'e-1', eventName: 'AttachRolePolicy' }] }
    await shipper.publish({ name: external }, [{ key: 'account-1', value: body }])

    const rt = createTestRuntime({ level: 'info' })
    const bus = await openKafkaBus(kafkaTestConfig(), rt)
    const seen: RawRecord[] = []
    const group = randomName('nerve-cloudtrail-reader')
    const sub = await bus.subscribeRaw(external, group, async (batch) => {
      seen.push(...batch)
    })
    await waitFor(() => seen.length === 1, { timeoutMs: 60_000, what: 'the shipped record' })
    expect(JSON.parse(seen[0]?.value.toString('utf8') ?? '')).toEqual(body)
    await waitFor(async () => (await rt.metrics.render()).includes(`topic="${external}",group="${group}"`), {
      timeoutMs: 10_000,
      what: 'the lag series',
    })
    expect(await rt.metricValue('nerve_bus_consumer_lag_records', { topic: external, group })).toBe(0)
    await sub.stop()
    await Promise.all([bus.close(), shipper.close()])
  })

  it('publishes to topics it created with the configured partitions, keyed like Kafka’s own clients', async () => {
    const bus = await openKafkaBus(kafkaTestConfig({ partitions: 12 }))
    const topic: Topic<Item> = { name: randomName('keys') }
    await bus.publish(topic, [{ key: '21', value: { key: '21', seq: 0 } }])
    expect(bus.partitionsOf(topic)).toBe(12)
    const partitions: number[] = []
    const sub = await bus.subscribe<Item>(topic, randomName('g'), async (batch) => {
      partitions.push(...batch.map((r) => r.partition))
    })
    await waitFor(() => partitions.length === 1, { timeoutMs: 60_000, what: 'the keyed record' })
    // Kafka's UtilsTest: murmur2("21") = -973932308 → partition 0 of 12 (as the Java client picks).
    expect(partitions).toEqual([0])
    await sub.stop()
    await bus.close()
  })
})
