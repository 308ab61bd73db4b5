// A final checkpoint save that outlasts a clean stop's budget is abandoned, but it goes on running. It
// must write nothing once abandoned: the member then leaves its group, the group gives the partition to
// another member, and a late delta, manifest or deletion would overwrite the next owner's checkpoint keys.
// Before: the member said it owned the partition until its disconnect ended (up to the leave grace) after
// LeaveGroup, and the correlator's fence asked only the member.
import { describe, expect, it } from 'vitest'
import type { Bus, Subscription, Topic } from '../../../bus/bus.ts'
import type { CheckpointStore } from '../../../correlate/checkpoint-store.ts'
import { type Item, records } from '../../contract/bus-records.ts'
import { randomName } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { openBus, startCorrelatorOnKafka } from './kafka-correlator-stage.ts'
import { createKafkaDouble, type KafkaDouble } from './kafka-double.ts'

const abandoned =
  'The final checkpoint save did not end within the stop’s time; abandoned, the records since the last checkpoint will be handled again.'

/** The double, but its consumers' disconnect takes 1.5 s after LeaveGroup (a real broker); `left` once sent. */
function slowDisconnects(double: KafkaDouble) {
  const state = { left: false }
  const createClient = (options: unknown) => {
    const client = (double.createClient as (o: unknown) => Record<string, unknown>)(options)
    const consumer = client.consumer as (o: unknown) => {
      stop: () => Promise<void>
      disconnect: () => Promise<void>
    }
    return {
      ...client,
      consumer: (o: unknown) => {
        const c = consumer(o)
        return {
          ...c,
          stop: async () => {
            await c.stop()
            state.left = true
          },
          disconnect: async () => {
            await new Promise((resolve) => setTimeout(resolve, 1_500))
            await c.disconnect()
          },
        }
      },
    }
  }
  return { double: { ...double, createClient } as KafkaDouble, state }
}

describe('a final save abandoned at a Kafka stop', () => {
  it('the member owns nothing from the moment it sends LeaveGroup', async () => {
    const { double, state } = slowDisconnects(createKafkaDouble())
    const bus = await openBus(double, createTestRuntime(), 1)
    const topic: Topic<Item> = { name: randomName('leaving') }
    await bus.publish(topic, records(10))
    const sub: Subscription = await bus.subscribe<Item>(topic, randomName('correlate'), async () => undefined)
    await waitFor(() => sub.owns?.(0), { what: 'the member to own partition 0' })
    const stopped = sub.stop()
    await waitFor(() => state.left, { what: 'LeaveGroup sent' })
    // The disconnect still runs; the group may already have given partition 0 to another member.
    expect(sub.owns?.(0)).toBe(false)
    await stopped
    await bus.close()
  })

  it('writes nothing once abandoned, though the member has not left yet', async () => {
    const double = createKafkaDouble()
    // The member's stop waits until the abandoned save has asked whether it may still write.
    let asked: () => void = () => undefined
    const saveAsked = new Promise<void>((resolve) => (asked = resolve))
    const stopsLate = (bus: Bus): Bus => ({
      ...bus,
      subscribe: async (topic, group, handle, options) => {
        const sub = await bus.subscribe(topic, group, handle, options)
        return { ...sub, stop: () => saveAsked.then(() => sub.stop()) }
      },
    })
    let slowing = false
    let ownedOnceAbandoned: boolean | undefined
    let logs: () => { msg: string }[] = () => []
    const stage = await startCorrelatorOnKafka(
      double,
      (store): CheckpointStore => ({
        ...store,
        save: async (partition, update) => {
          if (slowing) {
            await waitFor(() => logs().some((l) => l.msg === abandoned), { what: 'the final save abandoned' })
            ownedOnceAbandoned = update.owned?.()
            asked()
          }
          return store.save(partition, update)
        },
      }),
      stopsLate,
    )
    logs = () => stage.rt.logs
    await stage.handledAndSaved('e-abandoned')
    slowing = true
    await stage.close()
    expect(ownedOnceAbandoned).toBe(false)
  })
})
