// A clean stop after kafkajs crashed. kafkajs 2.2's onCrash stops its runner and drops its consumer group
// (consumer.pause() then throws "Consumer group was not initialized"), and a restart joins again with a new
// group, which has no pause. Before: the correlator's drain() rejected, so its stop never left the group
// (nor closed its store, nor let nerve close the bus); and a member drained before the restart fetched
// again, each batch refused and fetched again in a tight loop.
import { describe, expect, it } from 'vitest'
import type { Topic } from '../../../bus/bus.ts'
import { eventsTopic } from '../../../bus/topics.ts'
import { correlateGroup } from '../../../correlate/start-correlate.ts'
import { type Item, records } from '../../contract/bus-records.ts'
import { randomName } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { shellBurst } from '../correlate/sample-events.ts'
import { openBus, startCorrelatorOnKafka } from './kafka-correlator-stage.ts'
import { createKafkaDouble } from './kafka-double.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)

describe('a clean stop after kafkajs crashed', () => {
  it('the correlator still stops: its consumer leaves and nerve can close the bus', async () => {
    const double = createKafkaDouble()
    const stage = await startCorrelatorOnKafka(double)
    await stage.bus.publish(eventsTopic, shellBurst('e-crash', 10, T0))
    await waitFor(async () => (await stage.received()) === 10, { what: 'the 10 handled' })
    // The cluster went away long enough for kafkajs to give up; it was told not to restart.
    await double.crash(correlateGroup, false)
    const consumer = double.consumers.find((c) => c.options.groupId === correlateGroup)
    const stopsBefore = consumer?.stops ?? 0

    await stage.close()
    expect(consumer?.stops).toBeGreaterThan(stopsBefore)
    expect(stage.rt.logs.map((l) => l.msg)).toContain(
      'No consumer group to pause (kafkajs crashed); it fetches nothing.',
    )
  })

  it('a member drained before kafkajs restarted stays paused: nothing more is fetched or handed over', async () => {
    const double = createKafkaDouble()
    const rt = createTestRuntime()
    const bus = await openBus(double, rt, 1)
    const name: Topic<Item> = { name: randomName('crash-restart') }
    const group = randomName('group')
    let handled = 0
    const sub = await bus.subscribe(name, group, async (batch) => {
      handled += batch.length
    })
    await bus.publish(name, records(20, 1))
    await waitFor(() => handled === 20, { what: 'the 20 handled' })
    await sub.drain?.()
    // The agent sends on while the stop goes on, and kafkajs crashes and restarts meanwhile.
    await bus.publish(name, records(20, 1, 20))
    await double.crash(group, true)
    const joins = () => rt.logs.filter((l) => l.msg === 'Joined the consumer group.' && l.group === group)
    await waitFor(() => joins().length === 2, { what: 'the restarted consumer to join again' })
    const consumer = double.consumers.find((c) => c.options.groupId === group)
    const heartbeats = consumer?.heartbeats ?? 0
    // An idle member heartbeats; one that fetches on does not (its fetches bring records).
    await waitFor(() => (consumer?.heartbeats ?? 0) > heartbeats, { what: 'the rejoined member to idle' })
    expect(consumer?.paused()).toBe(true)
    expect(handled).toBe(20)
    await sub.stop()
    await bus.close()
  })
})
