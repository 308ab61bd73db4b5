// The Kafka bus's own logic against an in-memory double of kafkajs (kafka-double.ts): the bus contract,
// rebalance hooks across two instances, the raw reader, the key-value log, telemetry and error mapping.
// The same bus against a real broker: tests/contract/kafka-bus.test.ts and tests/integration.
import { describe, expect, it } from 'vitest'
import type { DeliveredRecord, Subscription, Topic } from '../../../bus/bus.ts'
import { createKafkaBus, type KafkaBus, type RawRecord } from '../../../bus/kafka-bus.ts'
import { isNerveError } from '../../../runtime/errors.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { KafkaConfig } from '../../../schemas/types.ts'
import { busContract } from '../../contract/bus-contract.ts'
import { type Item, range, records, seqs, sorted } from '../../contract/bus-records.ts'
import { randomName } from '../../helpers/random-names.ts'
import { createTestRuntime, type TestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { correlateRebalanceScenario } from '../../integration/kafka-correlate-scenario.ts'
import { restoreScenario } from '../../integration/kafka-restore-scenario.ts'
import { createKafkaDouble, type KafkaDouble } from './kafka-double.ts'

const kafkaConfig = (overrides: Partial<KafkaConfig> = {}): KafkaConfig => ({
  ...loadConfig({ env: { NERVE_KAFKA_BROKERS: 'double:9092' } }).kafka,
  ...overrides,
})

const open = (
  double: KafkaDouble,
  rt: TestRuntime = createTestRuntime(),
  overrides: Partial<KafkaConfig> = {},
) => createKafkaBus(kafkaConfig(overrides), { ...rt, createClient: double.createClient })

busContract('kafka bus on the kafkajs double', async ({ partitions }) => {
  const double = createKafkaDouble()
  let bus = await open(double, createTestRuntime(), { partitions })
  return {
    bus,
    reopen: async () => {
      await bus.close()
      bus = await open(double, createTestRuntime(), { partitions })
      return bus
    },
    cleanup: () => bus.close(),
  }
})

describe('kafka bus', () => {
  it('creates the nerve topics on start, the state topic compacted, with the prefix', async () => {
    const double = createKafkaDouble()
    const bus = await open(double, createTestRuntime(), { topic_prefix: 'prod.', partitions: 6 })
    expect(double.created.map((t) => t.topic)).toContain('prod.nerve.events.v1')
    const state = double.created.find((t) => t.topic === 'prod.nerve.correlator-state.v1')
    expect(state?.configEntries).toContainEqual({ name: 'cleanup.policy', value: 'compact' })
    expect(double.created.every((t) => t.numPartitions === 6)).toBe(true)
    await bus.close()
  })

  it('creates nothing when create_topics is off, and names the missing topic', async () => {
    const double = createKafkaDouble()
    const bus = await open(double, createTestRuntime(), { create_topics: false })
    expect(double.created).toEqual([])
    const refusal = await bus.publish({ name: 'absent' }, records(1)).catch((err: unknown) => err)
    expect(refusal).toMatchObject({ code: 'BUS_UNAVAILABLE', message: expect.stringContaining('absent') })
    await bus.close()
  })

  it('keys records by agent onto the partition Kafka’s murmur2 picks', async () => {
    const double = createKafkaDouble()
    const bus = await open(double, createTestRuntime(), { partitions: 12 })
    const topic: Topic<Item> = { name: randomName('keys') }
    await bus.publish(topic, [{ key: '21', value: { key: '21', seq: 0 } }])
    // murmur2("21") = -973932308 (Kafka's UtilsTest); toPositive(-973932308) = 1173551340 = 12 × 97795945.
    expect(double.log(topic.name)[0]).toHaveLength(1)
    expect(bus.partitionsOf(topic)).toBe(12)
    await bus.close()
  })

  it('writes the text a publisher already holds for a record (BusRecord.text) rather than serializing it again', async () => {
    const double = createKafkaDouble()
    const bus = await open(double, createTestRuntime(), { partitions: 1 })
    const topic: Topic<Item> = { name: randomName('texts') }
    const text = '{ "key" : "a", "seq" : 1 }'
    await bus.publish(topic, [
      { key: 'a', value: { key: 'a', seq: 1 }, text },
      { key: 'b', value: { key: 'b', seq: 2 } },
    ])
    expect(double.log(topic.name)[0]?.map((m) => m.value?.toString())).toEqual([text, '{"key":"b","seq":2}'])
    await bus.close()
  })

  it('wraps an unreachable cluster as a retriable BUS_UNAVAILABLE and counts it', async () => {
    const double = createKafkaDouble()
    const rt = createTestRuntime()
    const bus = await open(double, rt)
    const topic: Topic<Item> = { name: randomName('down') }
    await bus.publish(topic, records(1))
    double.setDown(true)
    const refusal = await bus.publish(topic, records(3)).catch((err: unknown) => err)
    expect(refusal).toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true })
    const labels = { component: 'kafka_bus', error_code: 'BUS_UNAVAILABLE', stage: 'publish' }
    expect(await rt.metricValue('nerve_component_errors_total', labels)).toBe(3)
    double.setDown(false)
    await bus.close()
  })

  it('fails to start with a retriable error when no broker answers', async () => {
    const double = createKafkaDouble()
    double.setDown(true)
    const refusal = await open(double).catch((err: unknown) => err)
    expect(isNerveError(refusal) && refusal.code).toBe('BUS_UNAVAILABLE')
    expect(isNerveError(refusal) && refusal.retriable).toBe(true)
  })

  it('hands kafkajs the client options from config (brokers, client id, SASL)', async () => {
    const double = createKafkaDouble()
    const sasl = { mechanism: 'scram-sha-512' as const, username: 'nerve', password: 'pw' }
    const rt = createTestRuntime()
    const bus = await open(double, rt, { client_id: 'nerve-ingest', sasl })
    expect(double.clients[0]).toMatchObject({ clientId: 'nerve-ingest', brokers: ['double:9092'], sasl })
    expect(rt.logs.some((l) => l.level === 'warn' && /SASL without TLS/.test(l.msg))).toBe(true)
    await bus.close()
  })
})

describe('kafka bus rebalances', () => {
  it('restores each partition (onAssign) before its records, and moves partitions between instances', async () => {
    const double = createKafkaDouble()
    const topic: Topic<Item> = { name: randomName('rebalance') }
    const group = randomName('correlate')
    const rtA = createTestRuntime()
    const a = await open(double, rtA, { partitions: 4 })
    const b = await open(double, createTestRuntime(), { partitions: 4 })
    await a.publish(topic, records(40, 8))

    type Seen = { events: string[]; handled: DeliveredRecord<Item>[] }
    const subscribeAs = async (bus: KafkaBus, seen: Seen) =>
      bus.subscribe<Item>(
        topic,
        group,
        async (batch) => {
          seen.events.push(`batch p${batch[0]?.partition}`)
          seen.handled.push(...batch)
        },
        {
          onAssign: async (parts) => {
            seen.events.push(`assign ${parts.join(',')}`)
          },
          onRevoke: async (parts) => {
            seen.events.push(`revoke ${parts.join(',')}`)
          },
        },
      )
    const seenA: Seen = { events: [], handled: [] }
    const seenB: Seen = { events: [], handled: [] }
    const subA = await subscribeAs(a, seenA)
    await waitFor(() => seenA.handled.length >= 40, { what: 'A reads all 40' })
    for (const p of [0, 1, 2, 3]) {
      expect(seenA.events.indexOf(`batch p${p}`)).toBeGreaterThan(
        seenA.events.findIndex((e) => e.startsWith('assign')),
      )
    }

    const subB = await subscribeAs(b, seenB)
    await waitFor(() => seenA.events.includes('revoke 1,3'), { what: 'A gives up partitions 1 and 3' })
    expect(seenB.events[0]).toBe('assign 1,3')
    await a.publish(topic, records(40, 8, 40))
    await waitFor(() => seenA.handled.length + seenB.handled.length >= 80, {
      what: 'the next 40 across A and B',
    })
    expect(new Set(seenB.handled.map((r) => r.partition))).toEqual(new Set([1, 3]))
    expect(sorted(seqs([...seenA.handled, ...seenB.handled]))).toEqual(range(0, 80))
    expect(await rtA.metricValue('nerve_bus_rebalances_total', { topic: topic.name, group })).toBe(2)
    expect(await rtA.metricValue('nerve_bus_assigned_partitions', { topic: topic.name, group })).toBe(2)

    await subA.stop()
    await waitFor(() => seenB.events.includes('assign 0,2'), { what: 'B takes over A’s partitions' })
    await subB.stop()
    expect(seenB.events.at(-1)).toBe('revoke 0,1,2,3')
    await Promise.all([a.close(), b.close()])
  })

  it('tells a stage which partitions it owns: none from the moment a rebalance begins, then those it keeps', async () => {
    const double = createKafkaDouble()
    const topic: Topic<Item> = { name: randomName('owns') }
    const group = randomName('correlate')
    const a = await open(double, createTestRuntime(), { partitions: 4 })
    const b = await open(double, createTestRuntime(), { partitions: 4 })
    const subA = await a.subscribe<Item>(topic, group, async () => {})
    const owned = (sub: Subscription) => [0, 1, 2, 3].filter((p) => sub.owns?.(p))
    await waitFor(() => owned(subA).length === 4, { what: 'A to own every partition' })
    // Kafka tells A that the group rebalances before it rejoins: B may be given any partition.
    double.startRebalance(group)
    expect(owned(subA)).toEqual([])
    const subB = await b.subscribe<Item>(topic, group, async () => {})
    expect(owned(subA)).toEqual([0, 2])
    expect(owned(subB)).toEqual([1, 3])
    await subB.stop()
    await waitFor(() => owned(subA).length === 4, { what: 'A to own every partition again' })
    expect(owned(subB)).toEqual([])
    await subA.stop()
    expect(owned(subA)).toEqual([])
    await Promise.all([a.close(), b.close()])
  })

  it('is not ready while a partition is being restored, and handles nothing of it meanwhile', async () => {
    const double = createKafkaDouble()
    const bus = await open(double, createTestRuntime(), { partitions: 1 })
    const topic: Topic<Item> = { name: randomName('restore') }
    await bus.publish(topic, records(3, 1))
    let finishRestore = () => {}
    const handled: number[] = []
    const sub = await bus.subscribe<Item>(
      topic,
      randomName('g'),
      async (batch) => {
        handled.push(...seqs(batch))
      },
      {
        onAssign: () =>
          new Promise<void>((resolve) => {
            finishRestore = resolve
          }),
      },
    )
    await waitFor(() => bus.readiness().ok === false, { what: 'restoring' })
    expect(bus.readiness().detail).toBe('restoring 1 partitions')
    expect(handled).toEqual([])
    finishRestore()
    await waitFor(() => handled.length === 3, { what: 'the records after the restore' })
    expect(bus.readiness()).toEqual({ ok: true })
    await sub.stop()
    await bus.close()
    expect(bus.readiness()).toEqual({ ok: false, detail: 'closed' })
  })

  it('retries a failed restore before handing over any record of the partition', async () => {
    const double = createKafkaDouble()
    const rt = createTestRuntime()
    const bus = await open(double, rt, { partitions: 1 })
    const topic: Topic<Item> = { name: randomName('restore-fails') }
    await bus.publish(topic, records(2, 1))
    let attempts = 0
    const handled: number[] = []
    const sub = await bus.subscribe<Item>(
      topic,
      randomName('g'),
      async (batch) => {
        handled.push(...seqs(batch))
      },
      {
        onAssign: async () => {
          attempts++
          if (attempts === 1) throw new Error('state topic unreachable')
        },
      },
    )
    await waitFor(() => handled.length === 2, { what: 'records after the second restore' })
    expect(attempts).toBe(2)
    expect(rt.logs.some((l) => l.level === 'warn' && l.stage === 'restore')).toBe(true)
    await sub.stop()
    await bus.close()
  })
})

describe('kafka bus telemetry', () => {
  it('exports lag per group and partition, and counts records in and out', async () => {
    const double = createKafkaDouble()
    const rt = createTestRuntime()
    const bus = await open(double, rt, { partitions: 2 })
    const topic: Topic<Item> = { name: randomName('lag') }
    await bus.publish(topic, records(120, 4))
    const handled: number[] = []
    const sub = await bus.subscribe<Item>(
      topic,
      'meter',
      async (batch) => {
        handled.push(...seqs(batch))
      },
      { maxBatch: 10 },
    )
    await waitFor(() => handled.length >= 120, { what: 'all 120' })
    await waitFor(async () => (await rt.metricValue('nerve_component_received_events_total')) === 120)
    const component = { component: 'kafka_bus' }
    expect(await rt.metricValue('nerve_component_sent_events_total', component)).toBe(120)
    expect(
      await rt.metricValue('nerve_bus_consumer_lag_records', { topic: topic.name, group: 'meter' }),
    ).toBe(0)
    const text = await rt.metrics.render()
    expect(text).toMatch(/nerve_bus_consumer_lag_records\{topic="[^"]+",group="meter",partition="[01]"\} 0/)
    await sub.stop()
    await bus.close()
  })

  it('drops a record that is not JSON with an error log and a discarded count, and goes on', async () => {
    const double = createKafkaDouble()
    const rt = createTestRuntime()
    const bus = await open(double, rt, { partitions: 1 })
    const topic: Topic<Item> = { name: randomName('poison') }
    await bus.publish(topic, records(1, 1))
    double
      .log(topic.name)[0]
      ?.push({ key: Buffer.from('agent-0'), value: Buffer.from('{not json'), timestamp: 0 })
    await bus.publish(topic, records(1, 1, 1))
    const handled: number[] = []
    const sub = await bus.subscribe<Item>(topic, 'g', async (batch) => {
      handled.push(...seqs(batch))
    })
    await waitFor(() => handled.length === 2, { what: 'both valid records' })
    expect(handled).toEqual([0, 1])
    const labels = { component: 'kafka_bus', reason: 'undecodable' }
    expect(await rt.metricValue('nerve_component_discarded_events_total', labels)).toBe(1)
    expect(rt.logs.find((l) => l.level === 'error')).toMatchObject({ offset: '1' })
    await sub.stop()
    await bus.close()
  })
})

describe('kafka bus raw reader', () => {
  it('reads an external topic as bytes, unprefixed, never creating it, committing after the handler', async () => {
    const double = createKafkaDouble()
    const shipper = await open(double, createTestRuntime(), { topic_prefix: '' })
    await shipper.publish({ name: 'cloudtrail-raw' }, [{ key: 'k', value: { Records: [] } }])
    const bus = await open(double, createTestRuntime(), { topic_prefix: 'nerve-prod.' })
    const seen: RawRecord[] = []
    const sub = await bus.subscribeRaw('cloudtrail-raw', 'nerve-cloudtrail-reader', async (batch) => {
      seen.push(...batch)
    })
    await waitFor(() => seen.length === 1, { what: 'the raw record' })
    expect(seen[0]).toMatchObject({ key: 'k', partition: expect.any(Number), offset: 0 })
    expect(seen[0]?.value.toString()).toBe('{"Records":[]}')
    await sub.stop()
    expect(double.committed('nerve-cloudtrail-reader', 'cloudtrail-raw', seen[0]?.partition ?? -1)).toBe(1)
    expect(double.created.some((t) => t.topic.startsWith('nerve-prod.cloudtrail'))).toBe(false)
    const missing = await bus.subscribeRaw('absent', 'g', async () => {}).catch((err: unknown) => err)
    expect(missing).toMatchObject({ code: 'BUS_UNAVAILABLE' })
    await Promise.all([shipper.close(), bus.close()])
  })
})

describe('kafka key-value log', () => {
  it('gives every instance the latest value per key, tombstones included', async () => {
    const double = createKafkaDouble()
    const rt = createTestRuntime()
    const a = await open(double, rt)
    const b = await open(double, createTestRuntime())
    const topic: Topic<{ agent: string }> = { name: randomName('links') }
    const writer = await a.openKeyValueLog<{ agent: string }>(topic)
    await writer.put('AKIAEXAMPLE1', { agent: 'data-cleaner' })
    await writer.put('AKIAEXAMPLE2', { agent: 'reporter' })
    await writer.put('AKIAEXAMPLE1', { agent: 'data-cleaner-v2' })
    await writer.put('AKIAEXAMPLE2', undefined)

    const reader = await b.openKeyValueLog<{ agent: string }>(topic)
    expect(await reader.get('AKIAEXAMPLE1')).toEqual({ agent: 'data-cleaner-v2' })
    expect(await reader.get('AKIAEXAMPLE2')).toBeUndefined()
    await writer.put('AKIAEXAMPLE3', { agent: 'late' })
    expect(await reader.get('AKIAEXAMPLE3')).toEqual({ agent: 'late' })
    expect(double.created.find((t) => t.topic === topic.name)?.configEntries).toContainEqual({
      name: 'cleanup.policy',
      value: 'compact',
    })
    expect(await writer.get('AKIAEXAMPLE3')).toEqual({ agent: 'late' })
    expect(await rt.metricValue('nerve_bus_key_value_entries', { topic: topic.name })).toBe(2)
    await Promise.all([writer.close(), reader.close()])
    await Promise.all([a.close(), b.close()])
  })
})

describe('kafka bus state restoration', () => {
  it('keeps every record exactly once in per-partition checkpoints while partitions move between instances', async () => {
    const double = createKafkaDouble()
    await restoreScenario(() => open(double, createTestRuntime(), { partitions: 4 }), 10_000)
  })
})

describe('kafka bus with several correlator copies', () => {
  for (const snapshotAfterBytes of [undefined, 0]) {
    it(`keeps every pair across rebalances: edges buffered by one copy join cores read by another (snapshots after ${snapshotAfterBytes ?? 'the default'} bytes)`, async () => {
      const double = createKafkaDouble()
      await correlateRebalanceScenario((rt) => open(double, rt, { partitions: 4 }), {
        timeoutMs: 10_000,
        exactlyOnce: true,
        snapshotAfterBytes,
        checkpointRecords: 1,
      })
    })
  }
  it('keeps every pair across rebalances with checkpoints every max_records (ids repeated at most)', async () => {
    const double = createKafkaDouble()
    await correlateRebalanceScenario((rt) => open(double, rt, { partitions: 4 }), {
      timeoutMs: 10_000,
      exactlyOnce: false,
    })
  })
})

describe('kafka bus with a handler that holds commits back', () => {
  it('commits only up to the bound it resolves with, fetches on, and after a rejection seeks back to that bound', async () => {
    const double = createKafkaDouble()
    const bus = await open(double, createTestRuntime(), { partitions: 1 })
    const topic: Topic<Item> = { name: randomName('bound') }
    const group = randomName('group')
    await bus.publish(topic, records(6, 1))
    const handled: number[][] = []
    const committedAtCall: (number | undefined)[] = []
    let failed = false
    const sub = await bus.subscribe(
      topic,
      group,
      async (batch) => {
        const offsets = batch.map((r) => r.offset)
        handled.push(offsets)
        committedAtCall.push(double.committed(group, topic.name, 0))
        if (offsets[0] === 0) return { commit: 0 }
        if (offsets[0] === 2) return { commit: 2 }
        if (!failed) {
          failed = true
          throw new Error('checkpoint failed')
        }
      },
      { maxBatch: 2 },
    )
    await waitFor(() => double.committed(group, topic.name, 0) === 6, { what: 'the last commit' })
    expect(handled).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
      [2, 3],
      [4, 5],
    ])
    // A bound of 0, where the assignment started, moves nothing: no commit is sent for it.
    expect(committedAtCall).toEqual([undefined, undefined, 2, 2, 2])
    await sub.stop()
    await bus.close()
  })
})

describe('kafka bus with a handler that holds commits back, past records it cannot decode', () => {
  it('keeps the commit at the bound when a chunk has no record to hand over', async () => {
    const double = createKafkaDouble()
    const bus = await open(double, createTestRuntime(), { partitions: 1 })
    const topic: Topic<Item> = { name: randomName('bound-undecodable') }
    const group = randomName('group')
    await bus.publish(topic, records(2, 1))
    const log = double.log(topic.name)[0]
    for (let i = 0; i < 2; i++)
      log?.push({ key: Buffer.from('agent-0'), value: Buffer.from('{not json'), timestamp: 0 })
    await bus.publish(topic, records(1, 1, 2))
    const handled: number[] = []
    // A correlator whose checkpoint still lies before offset 0: nothing may be committed past it.
    const sub = await bus.subscribe(
      topic,
      group,
      async (batch) => {
        handled.push(...batch.map((r) => r.offset))
        return { commit: 0 }
      },
      { maxBatch: 2 },
    )
    await waitFor(() => handled.includes(4), { what: 'the record after the undecodable ones' })
    await sub.stop()
    expect(handled).toEqual([0, 1, 4])
    expect(double.committed(group, topic.name, 0) ?? 0).toBe(0)
    await bus.close()
  })
})
