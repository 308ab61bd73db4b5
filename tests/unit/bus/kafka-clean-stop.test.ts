// A clean stop of the correlator on Kafka (a deploy): it stops fetching and lets the batch in flight end
// (Subscription.drain), saves every partition, commits those saves while the member still belongs to its
// group, and only then leaves. Otherwise the final save's commit came after the member left: a clean
// restart read up to max_interval of records again, and Kafka's lag tools (kafka-consumer-groups.sh,
// Burrow) showed that lag for as long as nerve was stopped. None of it may set a commit back, commit a
// partition that moved meanwhile, or hold a SIGTERM past the session timeout.
import { describe, expect, it } from 'vitest'
import type { Topic } from '../../../bus/bus.ts'
import { eventsTopic } from '../../../bus/topics.ts'
import { correlateGroup } from '../../../correlate/start-correlate.ts'
import { type Item, records } from '../../contract/bus-records.ts'
import { randomName } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { shellBurst } from '../correlate/sample-events.ts'
import {
  openBus as open,
  startCorrelatorOnKafka as startStage,
  eventsTopicName as topic,
} from './kafka-correlator-stage.ts'
import { createKafkaDouble } from './kafka-double.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)

describe('the correlator on Kafka, stopped cleanly', () => {
  it('commits its final save before leaving: the commit is at the log end, and a restart reads nothing again', async () => {
    const double = createKafkaDouble()
    const first = await startStage(double)
    await first.handledAndSaved('e-deploy')
    await first.close()
    expect(double.committed(correlateGroup, topic, 0)).toBe(2_500)

    // The restart: the next record is the first it reads.
    const second = await startStage(double)
    await second.bus.publish(eventsTopic, shellBurst('e-after', 1, T0 + 3_000_000))
    await waitFor(async () => (await second.received()) > 0, { what: 'the record after the restart handled' })
    expect(await second.received()).toBe(1)
    expect(await second.rt.metricValue('nerve_correlate_replayed_records_skipped_total')).toBe(0)
    await second.close()
  })

  it('right after a start, with nothing handled, sends no commit below the group’s', async () => {
    const double = createKafkaDouble()
    const first = await startStage(double)
    await first.bus.publish(eventsTopic, shellBurst('e-first', 170, T0))
    await waitFor(async () => (await first.received()) === 170, { what: 'the 170 handled' })
    await first.close()
    expect(double.committed(correlateGroup, topic, 0)).toBe(170)
    const before = double.commits.length

    // A deploy right after the restart, as the agent's next burst arrives.
    const second = await startStage(double)
    await second.bus.publish(eventsTopic, shellBurst('e-second', 30, T0 + 3_000_000))
    await second.close()
    const sent = double.commits.slice(before).filter((c) => c.groupId === correlateGroup)
    expect(sent.filter((c) => c.offset < 170)).toEqual([])
    expect(double.committed(correlateGroup, topic, 0)).toBeGreaterThanOrEqual(170)
  })

  it('ends within the session timeout when the coordinator never answers its commits, saying so', async () => {
    const double = createKafkaDouble()
    const stage = await startStage(double)
    await stage.handledAndSaved('e-sick')
    const wire = double.holdCommits()
    // The test's own timeout (20 s) is the bound: the stop gives up after the 6 s session timeout.
    await stage.close()
    expect(wire.held()).toBe(1)
    expect(stage.rt.logs.map((l) => l.msg)).toContain(
      'Commits still waiting at stop were given up; their records are read again after the restart.',
    )
    expect(double.committed(correlateGroup, topic, 0)).toBe(2_000)
    wire.release()
  })
})

describe('a Kafka member draining while its group rebalances', () => {
  it('hands over nothing more, and commits nothing of a partition that moved meanwhile', async () => {
    const double = createKafkaDouble()
    const name: Topic<Item> = { name: randomName('drain-rebalance') }
    const group = randomName('group')
    const busA = await open(double, createTestRuntime(), 2)
    let gate: Promise<void> | undefined
    let release = () => {}
    let blocked = false
    /** Records A was handed, per partition, and how many once its drain began. */
    const handled = [0, 0]
    let afterDrain = 0
    let draining = false
    // A saves nothing in its batches (every bound is 0): only its final advance would move a commit.
    const subA = await busA.subscribe(name, group, async (batch) => {
      const partition = batch[0]?.partition ?? 0
      if (draining) afterDrain += batch.length
      handled[partition] = (handled[partition] ?? 0) + batch.length
      if (partition === 1 && gate) {
        blocked = true
        await gate
      }
      return { commit: 0 }
    })
    await busA.publish(name, records(40, 8))
    const sizes = () => double.log(name.name).map((log) => log.length)
    await waitFor(() => [0, 1].every((p) => handled[p] === sizes()[p]), {
      what: 'A to handle both partitions',
    })

    // Partition 1's next batch is in flight when the stop begins.
    gate = new Promise((resolve) => {
      release = resolve
    })
    await busA.publish(name, records(40, 8, 40))
    await waitFor(() => blocked, { what: 'a batch of partition 1 in flight' })
    const handedToA = handled[0]
    draining = true
    const drained = subA.drain?.()
    // The agent sends on: none of it is handed to A any more.
    await busA.publish(name, records(40, 8, 80))
    // Member B joins meanwhile: partition 1 moves to it, partition 0 stays A's.
    const busB = await open(double, createTestRuntime(), 2)
    const handledB: number[] = []
    await busB.subscribe(name, group, async (batch) => {
      for (const r of batch) handledB.push(r.partition)
      return { commit: 0 }
    })
    await waitFor(() => subA.owns?.(0) === true && subA.owns?.(1) === false, {
      what: 'partition 1 to move to B',
    })
    release()
    await drained
    // A's final saves: partition 0's is committed up to what A was handed, partition 1's is B's.
    await subA.advance?.(0, sizes()[0] ?? 0)
    await subA.advance?.(1, sizes()[1] ?? 0)
    expect(double.committed(group, name.name, 0)).toBe(handedToA)
    expect(double.committed(group, name.name, 1) ?? 0).toBe(0)
    // B reads partition 1 from the group's commit, the agent's last records included; A was handed
    // nothing after the batch in flight.
    await waitFor(() => handledB.length === sizes()[1], { what: 'B to read partition 1 from its start' })
    expect(afterDrain).toBe(0)
    await Promise.all([busA.close(), busB.close()])
  })
})
