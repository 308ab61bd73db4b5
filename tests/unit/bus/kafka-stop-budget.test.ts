// A clean stop on Kafka has one budget, the session timeout from its first step: the batch in flight, the
// correlator's final save and its commit share it; then leaving the group gets a short grace, and the stop
// goes on whatever is still running (a SIGTERM is not held until a second signal). Before: a final save
// through a key-value log that kafkajs kept retrying, or a handler that never ended, held the stop for as
// long; and a save that merely spent the budget was reported as commits given up on a healthy coordinator.
import { describe, expect, it } from 'vitest'
import type { Topic } from '../../../bus/bus.ts'
import type { CheckpointStore } from '../../../correlate/checkpoint-store.ts'
import { correlateGroup } from '../../../correlate/start-correlate.ts'
import { type Item, records } from '../../contract/bus-records.ts'
import { randomName } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { eventsTopicName, openBus, startCorrelatorOnKafka } from './kafka-correlator-stage.ts'
import { createKafkaDouble, type KafkaDouble } from './kafka-double.ts'

const givenUp = 'Commits still waiting at stop were given up; their records are read again after the restart.'
const abandoned =
  'The final checkpoint save did not end within the stop’s time; abandoned, the records since the last checkpoint will be handled again.'

/** The correlator with 2,500 records handled and 2,000 saved; then every save waits for `slow`. */
async function handledThenSlowSaves(double: KafkaDouble, slow: (save: () => Promise<void>) => Promise<void>) {
  let slowing = false
  const stage = await startCorrelatorOnKafka(
    double,
    (store): CheckpointStore => ({
      ...store,
      save: (partition, update) =>
        slowing ? slow(() => store.save(partition, update)) : store.save(partition, update),
    }),
  )
  await stage.handledAndSaved('e-budget')
  slowing = true
  return stage
}

describe('a clean stop on Kafka, bounded', () => {
  it('abandons a final save that never ends, and stops', async () => {
    const double = createKafkaDouble()
    // The checkpoint log's producer retries against a cluster that does not answer.
    const stage = await handledThenSlowSaves(double, () => new Promise(() => {}))
    await stage.close()
    const msgs = stage.rt.logs.map((l) => l.msg)
    expect(msgs).toContain(abandoned)
    expect(double.committed(correlateGroup, eventsTopicName, 0)).toBe(2_000)
  })

  it('a final save that outlasts the budget on a healthy coordinator gives up no commit', async () => {
    const double = createKafkaDouble()
    // The save ends a little after the budget (6 s) is spent; no commit is waiting then.
    const stage = await handledThenSlowSaves(double, async (save) => {
      await new Promise((resolve) => setTimeout(resolve, 6_500))
      await save()
    })
    await stage.close()
    const msgs = stage.rt.logs.map((l) => l.msg)
    expect(msgs).not.toContain(givenUp)
    expect(
      await stage.rt.metricValue('nerve_component_errors_total', {
        component: 'kafka_bus',
        error_code: 'BUS_UNAVAILABLE',
        stage: 'commit',
      }),
    ).toBe(0)
    expect(msgs).toContain(abandoned)
  })

  it('stops though a batch’s handler never ends', async () => {
    const double = createKafkaDouble()
    const rt = createTestRuntime()
    const bus = await openBus(double, rt, 1)
    const name: Topic<Item> = { name: randomName('stuck') }
    let started = false
    let release = () => {}
    const sub = await bus.subscribe(name, randomName('group'), async () => {
      started = true
      await new Promise<void>((resolve) => {
        release = resolve
      })
    })
    await bus.publish(name, records(3, 1))
    await waitFor(() => started, { what: 'a batch in flight' })
    await sub.drain?.()
    await sub.stop()
    expect(rt.logs.map((l) => l.msg)).toContain(
      'The member did not leave its group in time; the stop goes on, and the group drops it after the session timeout.',
    )
    release()
    await bus.close()
  })
})
