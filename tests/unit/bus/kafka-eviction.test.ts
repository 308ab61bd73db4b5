// A member the broker evicts (it missed heartbeats past the session timeout, say because the watched agent
// kept the main thread busy with large bodies) is told nothing: kafkajs learns it only from its next
// heartbeat or commit, and rejoins without a REBALANCING event. Meanwhile the group has given its
// partitions to another member. The bus must not let it believe it still owns them: a correlator's
// timer-driven checkpoint save in that window would write over the new owner's (the same delta numbers).
import { isDeepStrictEqual } from 'node:util'
import { describe, expect, it } from 'vitest'
import type { Subscription, Topic } from '../../../bus/bus.ts'
import { createKafkaBus } from '../../../bus/kafka-bus.ts'
import { consumerTiming } from '../../../bus/kafka-config.ts'
import { correlatorStateTopic, eventsTopic } from '../../../bus/topics.ts'
import {
  type CheckpointValue,
  createKeyValueCheckpointStore,
} from '../../../correlate/key-value-checkpoint-store.ts'
import { checkpointKey, correlateGroup, startCorrelate } from '../../../correlate/start-correlate.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config, KafkaConfig, NormalizedEvent } from '../../../schemas/types.ts'
import { type Item, records } from '../../contract/bus-records.ts'
import { gate } from '../../helpers/gate.ts'
import { randomName } from '../../helpers/random-names.ts'
import { createTestRuntime, type TestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { edgeEvent } from '../correlate/sample-events.ts'
import { createKafkaDouble, type KafkaDouble } from './kafka-double.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const min = 60_000

const kafkaConfig = (): KafkaConfig => ({
  ...loadConfig({ env: { NERVE_KAFKA_BROKERS: 'double:9092' } }).kafka,
  partitions: 1,
})
const { sessionTimeout } = consumerTiming(kafkaConfig())

/** The wall clock, which the test moves ahead as a stalled process sees it after the stall. */
function stallableClock() {
  let ahead = 0
  return { now: () => Date.now() + ahead, stall: (ms: number) => (ahead += ms) }
}

const open = (double: KafkaDouble, rt: TestRuntime, now: () => number = Date.now) =>
  createKafkaBus(kafkaConfig(), { ...rt, now, createClient: double.createClient })

describe('a Kafka member evicted from its group without being told', () => {
  it('owns nothing once the session timeout passed since its last heartbeat, and nothing after a call says it is gone, until it joins again', async () => {
    const double = createKafkaDouble()
    const clock = stallableClock()
    const bus = await open(double, createTestRuntime(), clock.now)
    const topic: Topic<Item> = { name: randomName('evicted') }
    const group = randomName('correlate')
    const hooks: string[] = []
    let handled = 0
    const sub: Subscription = await bus.subscribe<Item>(
      topic,
      group,
      async (batch) => {
        handled += batch.length
      },
      {
        onAssign: async (p) => {
          hooks.push(`assign ${p.join(',')}`)
        },
        onRevoke: async (p) => {
          hooks.push(`revoke ${p.join(',')}`)
        },
      },
    )
    await waitFor(() => sub.owns?.(0), { what: 'the member to own partition 0' })

    // The process stalls past the session timeout: the broker may have evicted it.
    clock.stall(sessionTimeout + 1)
    expect(sub.owns?.(0)).toBe(false)
    // A heartbeat the broker answers proves it was not: the partition is its own again.
    await bus.publish(topic, records(1, 1))
    await waitFor(() => handled === 1 && sub.owns?.(0), { what: 'a batch and its heartbeat' })

    // Now the broker does evict it; its next commit or heartbeat fails with UNKNOWN_MEMBER_ID.
    double.evict(group)
    await bus.publish(topic, records(1, 1, 1))
    await waitFor(() => hooks.length === 3, { what: 'the member to join again' })
    // Joined again as a new member: whatever it held may have been handled elsewhere meanwhile, so the
    // partition is revoked and restored again rather than kept.
    expect(hooks).toEqual(['assign 0', 'revoke 0', 'assign 0'])
    await waitFor(() => sub.owns?.(0), { what: 'the partition, restored again' })
    await sub.stop()
    await bus.close()
  })

  it('writes nothing more of a timer-driven checkpoint save, so the new owner’s checkpoint survives', async () => {
    const double = createKafkaDouble()
    const defaults = loadConfig()
    const configWith = (max_records: number, max_interval: number): Config => ({
      ...defaults,
      correlation: { ...defaults.correlation, checkpoint: { max_records, max_interval } },
    })
    const keyed = (events: NormalizedEvent[]) => events.map((e) => ({ key: e.agent.id, value: e }))
    const shells = [
      edgeEvent({ id: 'e-shell-a', agent: 'data-cleaner', time: T0 }),
      edgeEvent({ id: 'e-shell-b', agent: 'report-bot', time: T0 + min }),
    ]

    // Copy A saves on its timer only: its own clock stands still until the test moves it, so no batch is
    // due a save (max_records out of reach) and the timer's save (max_interval 5 ms) waits for the test.
    // The delta is written in pieces (longer than 64 characters), then a head naming them; the test holds
    // the save between the two.
    const clock = stallableClock()
    const rtA = createTestRuntime()
    const busA = await open(double, rtA, clock.now)
    const logA = await busA.openKeyValueLog<CheckpointValue>(correlatorStateTopic)
    let timeA = 0
    let piecesWritten = false
    const { held, release } = gate()
    const gated = {
      ...logA,
      putMany: async (values: readonly (readonly [string, CheckpointValue | undefined])[]) => {
        await logA.putMany(values)
        if (piecesWritten || !values.some(([key]) => key.includes('/delta-part/'))) return
        piecesWritten = true
        await held
      },
    }
    const copyA = await startCorrelate(configWith(1_000, 5), {
      bus: busA,
      log: rtA.log,
      metrics: rtA.metrics,
      checkpoints: createKeyValueCheckpointStore(gated, checkpointKey, { deltaPartChars: 64 }),
      now: () => timeA,
    })
    await busA.publish(eventsTopic, keyed(shells.slice(0, 1)))
    await waitFor(
      async () =>
        (await rtA.metricValue('nerve_component_received_events_total', { component: 'correlator' })) === 1,
      { what: 'copy A to handle the first shell' },
    )
    timeA = 10
    await waitFor(() => piecesWritten, { what: 'copy A’s timer-driven save, between its pieces and head' })

    // A stalls past the session timeout; the broker evicts it and tells it nothing. Copy B is given the
    // partition, restores it (A's pieces without a head are an unfinished delta: deleted), and saves
    // delta 1 of its own after each batch.
    clock.stall(sessionTimeout + 1)
    double.evict(correlateGroup)
    const rtB = createTestRuntime()
    const busB = await open(double, rtB)
    const logB = await busB.openKeyValueLog<CheckpointValue>(correlatorStateTopic)
    const copyB = await startCorrelate(configWith(1, 60_000), {
      bus: busB,
      log: rtB.log,
      metrics: rtB.metrics,
      checkpoints: createKeyValueCheckpointStore(logB, checkpointKey, { deltaPartChars: 64 }),
    })
    await busA.publish(eventsTopic, keyed(shells.slice(1)))
    const deltaOne = `${checkpointKey(0)}/delta/1`
    const deltaOfB = await waitFor(async () => await logB.get(deltaOne), { what: 'copy B’s first delta' })

    // A's save goes on: fenced, it stops before its head; unfenced, the head naming its pieces (which B's
    // restore deleted) would overwrite B's delta 1.
    release()
    const fenced = () => rtA.logs.some((l) => l.msg?.includes('its new owner saves it'))
    await waitFor(async () => fenced() || !isDeepStrictEqual(await logB.get(deltaOne), deltaOfB), {
      what: 'copy A’s save to end',
    })
    expect(await logB.get(deltaOne)).toEqual(deltaOfB)
    expect(fenced()).toBe(true)

    // Whoever restores partition 0 next finds B's delta, and both shells.
    await Promise.all([copyA.close(), copyB.close()])
    const reader = await open(double, createTestRuntime())
    const logAfter = await reader.openKeyValueLog<CheckpointValue>(correlatorStateTopic)
    expect(await logAfter.get(deltaOne)).toEqual(deltaOfB)
    const restored = await createKeyValueCheckpointStore(logAfter, checkpointKey).load(0)
    expect(restored?.state.entries.map((e) => e.id).sort()).toEqual(['e-shell-a', 'e-shell-b'])
    await Promise.all([busA.close(), busB.close(), reader.close()])
  })
})
