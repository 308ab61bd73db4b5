// State restoration across rebalances, with the hooks a correlator uses: each instance keeps state per
// input partition, checkpoints {partition, offset, state} into a compacted topic after every batch (one
// whole value: the simplest shape that shows the mechanism), restores it in onAssign() and skips records
// at or below the checkpoint offset.
// Two instances, partitions moving both ways: the final checkpoints hold every record exactly once.
// Run on the kafkajs double (unit) and on a real cluster (integration).
import { expect } from 'vitest'
import type { KeyValueLog, Subscription, Topic } from '../../bus/bus.ts'
import type { KafkaBus } from '../../bus/kafka-bus.ts'
import { type Item, range, records, sorted } from '../contract/bus-records.ts'
import { randomName } from '../helpers/random-names.ts'
import { waitFor } from '../helpers/wait-for.ts'

type PartitionState = { offset: number; seqs: number[] }
/** A checkpoint as this scenario keeps it: one whole value per partition. */
type CorrelatorCheckpoint = { offset: number; state: unknown }

async function startInstance(
  bus: KafkaBus,
  topic: Topic<Item>,
  stateTopic: Topic<CorrelatorCheckpoint>,
  group: string,
): Promise<{ sub: Subscription; kv: KeyValueLog<CorrelatorCheckpoint>; handled: () => number }> {
  const states = new Map<number, PartitionState>()
  const kv = await bus.openKeyValueLog<CorrelatorCheckpoint>(stateTopic)
  let handled = 0
  const sub = await bus.subscribe(
    topic,
    group,
    async (batch) => {
      const partition = batch[0]?.partition ?? -1
      const state = states.get(partition)
      if (!state) throw new Error(`partition ${partition} handed over before it was restored`)
      for (const r of batch) {
        if (r.offset <= state.offset) continue
        state.seqs.push(r.value.seq)
        state.offset = r.offset
      }
      await kv.put(String(partition), { offset: state.offset, state: [...state.seqs] })
      handled += batch.length
    },
    {
      maxBatch: 5,
      onAssign: async (partitions) => {
        for (const p of partitions) {
          const checkpoint = await kv.get(String(p))
          const seqs = (checkpoint?.state as number[] | undefined) ?? []
          states.set(p, { offset: checkpoint?.offset ?? -1, seqs: [...seqs] })
        }
      },
      onRevoke: async (partitions) => {
        for (const p of partitions) states.delete(p)
      },
    },
  )
  return { sub, kv, handled: () => handled }
}

export async function restoreScenario(openBus: () => Promise<KafkaBus>, timeoutMs: number): Promise<void> {
  const until = (check: () => unknown, what: string) => waitFor(check, { timeoutMs, what })
  const [a, b, auditor] = [await openBus(), await openBus(), await openBus()]
  const topic: Topic<Item> = { name: randomName('events') }
  const stateTopic: Topic<CorrelatorCheckpoint> = { name: randomName('correlator-state') }
  const group = randomName('correlate')
  const audit = await auditor.openKeyValueLog<CorrelatorCheckpoint>(stateTopic)
  const checkpointed = async () => {
    const all: number[] = []
    for (let p = 0; p < a.partitionsOf(topic); p++) {
      all.push(...(((await audit.get(String(p)))?.state as number[] | undefined) ?? []))
    }
    return all
  }
  const exactlyOnce = async (count: number) => {
    await until(async () => (await checkpointed()).length >= count, `${count} records checkpointed`)
    expect(sorted(await checkpointed())).toEqual(range(0, count))
  }

  await a.publish(topic, records(100, 9))
  const first = await startInstance(a, topic, stateTopic, group)
  await until(() => first.handled() >= 30, 'instance A under way')
  const second = await startInstance(b, topic, stateTopic, group)
  await a.publish(topic, records(100, 9, 100))
  await exactlyOnce(200)

  await first.sub.stop()
  await b.publish(topic, records(50, 9, 200))
  await exactlyOnce(250)

  const third = await startInstance(a, topic, stateTopic, group)
  await b.publish(topic, records(50, 9, 250))
  await exactlyOnce(300)

  await Promise.all([second.sub.stop(), third.sub.stop()])
  await Promise.all([first.kv.close(), second.kv.close(), third.kv.close(), audit.close()])
  await Promise.all([a.close(), b.close(), auditor.close()])
}
