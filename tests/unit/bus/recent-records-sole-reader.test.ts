// A topic whose values one group reads hands them out unfrozen (recent-records.ts): what that reader makes of
// them must not reach its own redelivery, nor a group that subscribes after it.
import { afterEach, describe, expect, it } from 'vitest'
import type { DeliveredRecord } from '../../../bus/bus.ts'
import { createEmbeddedBus } from '../../../bus/embedded-bus.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'

type V = { agent: { id: string } }
const topic = { name: 'nerve.correlations.v1' }
const buses: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const b of buses.splice(0)) await b.close()
})

describe('one group reading a topic as values', () => {
  it('gets the published value again on redelivery, not what its failed attempt made of it', async () => {
    const bus = createEmbeddedBus(
      { dataDir: tempDir('r21'), partitions: 1, retentionMs: 86_400_000, maxBatch: 10 },
      createTestRuntime(),
    )
    buses.push(bus as never)
    const seen: string[] = []
    let attempts = 0
    await bus.subscribe<V>(topic, 'solo', async (batch) => {
      attempts++
      seen.push(...batch.map((r) => r.value.agent.id))
      if (attempts === 1) {
        for (const r of batch) (r.value as V).agent.id = 'changed-by-handler'
        throw new Error('webhook down')
      }
    })
    await bus.publish<V>(topic, [{ key: 'a', value: { agent: { id: 'data-cleaner' } } }])
    await waitFor(() => attempts >= 2 || undefined, { what: 'the redelivery', timeoutMs: 30_000 })
    expect(seen).toEqual(['data-cleaner', 'data-cleaner'])
  })

  it("gives a group that subscribes later the published value, not the first group's change", async () => {
    const bus = createEmbeddedBus(
      { dataDir: tempDir('r21'), partitions: 1, retentionMs: 86_400_000, maxBatch: 10 },
      createTestRuntime(),
    )
    buses.push(bus as never)
    let release!: () => void
    const held = new Promise<void>((r) => {
      release = r
    })
    let handled = 0
    await bus.subscribe<V>(topic, 'nerve-revoke', async (batch) => {
      handled++
      for (const r of batch) (r.value as V).agent.id = 'changed-by-revoke'
      await held
    })
    await bus.publish<V>(topic, [{ key: 'a', value: { agent: { id: 'data-cleaner' } } }])
    await waitFor(() => handled > 0 || undefined, { what: 'the first group', timeoutMs: 30_000 })
    const late: DeliveredRecord<V>[] = []
    await bus.subscribe<V>(topic, 'nerve-elasticsearch', async (batch) => {
      late.push(...batch)
    })
    await waitFor(() => late.length > 0 || undefined, { what: 'the late group', timeoutMs: 30_000 })
    release()
    expect(late[0]?.value.agent.id).toBe('data-cleaner')
  })
})
