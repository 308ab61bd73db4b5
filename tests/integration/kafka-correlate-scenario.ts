// Several `nerve correlate` copies on the Kafka bus, sharing checkpoints through the compacted state topic:
// an agent's edge event is buffered by copy A, its partition moves to copy B (B starts, later A stops), and
// the matching core event, read by B, still makes the pair: no correlation is lost across rebalances, and
// every pair is emitted with its one deterministic id. Run on the kafkajs double (unit) and a real cluster.
// With a checkpoint after every batch, a clean handover on the double re-publishes nothing (exactlyOnce);
// with the default cadence the new owner handles again the records since the last save (same ids).
import { expect } from 'vitest'
import type { DeliveredRecord } from '../../bus/bus.ts'
import type { KafkaBus } from '../../bus/kafka-bus.ts'
import { correlationsTopic, correlatorStateTopic, eventsTopic } from '../../bus/topics.ts'
import {
  type CheckpointValue,
  createKeyValueCheckpointStore,
} from '../../correlate/key-value-checkpoint-store.ts'
import { checkpointKey, startCorrelate } from '../../correlate/start-correlate.ts'
import { loadConfig } from '../../runtime/load-config.ts'
import type { Correlation, NormalizedEvent } from '../../schemas/types.ts'
import { randomName } from '../helpers/random-names.ts'
import { createTestRuntime, type TestRuntime } from '../helpers/test-runtime.ts'
import { waitFor } from '../helpers/wait-for.ts'
import { coreEvent, edgeEvent } from '../unit/correlate/sample-events.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const minute = 60_000
const agents = Array.from({ length: 8 }, (_, i) => `agent-${i}`)

const keyed = (events: NormalizedEvent[]) => events.map((e) => ({ key: e.agent.id, value: e }))
const shells = () => agents.map((agent, i) => edgeEvent({ id: `e-shell-${i}`, agent, time: T0 + i * minute }))
const credentialSearches = () =>
  agents.map((agent, i) =>
    edgeEvent({
      id: `e-find-${i}`,
      agent,
      time: T0 + i * minute + 100_000,
      rule: 'Find AWS Credentials',
      priority: 'warning',
    }),
  )
const roleChanges = () =>
  agents.map((agent, i) => coreEvent({ id: `c-attach-${i}`, agent, time: T0 + i * minute + 90_000 }))
const secretReads = () =>
  agents.map((agent, i) =>
    coreEvent({
      id: `c-secret-${i}`,
      agent,
      time: T0 + i * minute + 120_000,
      action: 'secretsmanager:GetSecretValue',
      readOnly: true,
    }),
  )

export async function correlateRebalanceScenario(
  openBus: (rt: TestRuntime) => Promise<KafkaBus>,
  /** snapshotAfterBytes 0: the checkpoints also take snapshots, a few batches apart. */
  opts: {
    timeoutMs: number
    exactlyOnce: boolean
    snapshotAfterBytes?: number
    /** correlation.checkpoint.max_records (default: the config's default). */
    checkpointRecords?: number
  },
): Promise<void> {
  const defaults = loadConfig()
  const { checkpoint } = defaults.correlation
  const config = {
    ...defaults,
    correlation: {
      ...defaults.correlation,
      checkpoint: { ...checkpoint, max_records: opts.checkpointRecords ?? checkpoint.max_records },
    },
  }
  const until = (check: () => unknown, what: string) => waitFor(check, { timeoutMs: opts.timeoutMs, what })
  const feeder = await openBus(createTestRuntime())
  const emitted: DeliveredRecord<Correlation>[] = []
  const collector = await feeder.subscribe(correlationsTopic, randomName('collector'), async (batch) => {
    emitted.push(...batch)
  })

  const startCopy = async () => {
    const rt = createTestRuntime()
    const bus = await openBus(rt)
    const log = await bus.openKeyValueLog<CheckpointValue>(correlatorStateTopic)
    const stage = await startCorrelate(config, {
      bus,
      log: rt.log,
      metrics: rt.metrics,
      checkpoints: createKeyValueCheckpointStore(log, checkpointKey, {
        snapshotAfterBytes: opts.snapshotAfterBytes,
      }),
    })
    const received = () =>
      rt.metricValue('nerve_component_received_events_total', { component: 'correlator' })
    return { bus, stage, received }
  }

  await feeder.publish(eventsTopic, keyed([...shells(), ...credentialSearches()]))
  const a = await startCopy()
  await until(async () => (await a.received()) >= 16, 'copy A buffers every edge event')

  const b = await startCopy()
  await feeder.publish(eventsTopic, keyed(roleChanges()))
  // Distinct ids: without a checkpoint per batch, a copy that takes a partition over emits some again.
  const distinct = () => new Set(emitted.map((r) => r.value.id)).size
  await until(() => distinct() >= 8, 'the 8 shell → IAM pairs, across A and B')

  await a.stage.close()
  await a.bus.close()
  await feeder.publish(eventsTopic, keyed(secretReads()))
  await until(() => distinct() >= 24, 'the 8 credential search → secret and 8 shell → secret pairs, all on B')

  const ids = emitted.map((r) => r.value.id)
  const pairs = [...new Set(emitted.map((r) => `${r.value.agent.id} ${r.value.rule.id}`))].sort()
  expect(pairs).toEqual(
    agents
      .flatMap((agent) => [
        `${agent} credential-search-then-secret-access`,
        `${agent} shell-then-credential-access`,
        `${agent} shell-then-iam-privilege-change`,
      ])
      .sort(),
  )
  expect(new Set(ids).size).toBe(24)
  if (opts.exactlyOnce) expect(ids).toHaveLength(24)

  await b.stage.close()
  await collector.stop()
  await Promise.all([b.bus.close(), feeder.close()])
}
