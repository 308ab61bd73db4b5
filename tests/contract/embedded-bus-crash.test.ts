// Kills a process mid-stream (SIGKILL: no close, no flush) and proves, on reopen, that every acknowledged
// publish survived whole, nothing committed is delivered again and nothing uncommitted is lost: the
// records the child handled plus the records redelivered are exactly the published ones, and the only
// overlap is the batches that were handled but not yet durably committed when it died: at most two per
// partition (the one being handled, and the one before it whose commit was being synced).
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { DeliveredRecord, Topic } from '../../bus/bus.ts'
import { createEmbeddedBus } from '../../bus/embedded-bus.ts'
import { partitionForKey } from '../../bus/partition-for-key.ts'
import { randomName, tempDir } from '../helpers/random-names.ts'
import { createTestRuntime } from '../helpers/test-runtime.ts'
import { waitFor } from '../helpers/wait-for.ts'
import { byKey, type Item, range, sorted } from './bus-records.ts'

const child = join(import.meta.dirname, 'embedded-bus-crash-child.ts')
const partitions = 4
const maxBatch = 7

/** Whole lines only: a line cut by the kill was not acknowledged. */
const journal = (file: string): number[] =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(0, -1).map(Number) : []

/** One key per partition, so one end marker per partition tells a reader it has seen everything. */
const markerKeys = (): string[] => {
  const keys: string[] = []
  for (let i = 0; keys.length < partitions; i++) {
    const key = `end-${i}`
    if (!keys.some((k) => partitionForKey(k, partitions) === partitionForKey(key, partitions))) keys.push(key)
  }
  return keys
}

async function killMidStream(dataDir: string, topic: string, group: string, afterHandled: number) {
  const handledFile = join(dataDir, 'handled.log')
  const publishedFile = join(dataDir, 'published.log')
  const proc: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', child, dataDir, topic, group, handledFile, publishedFile],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  proc.stderr?.on('data', (chunk) => {
    stderr += chunk
  })
  const exited = new Promise((resolve) => proc.on('exit', resolve))
  try {
    await waitFor(() => proc.exitCode === null && journal(handledFile).length >= afterHandled, {
      timeoutMs: 15_000,
      what: `the child to handle ${afterHandled} records`,
    })
  } catch (err) {
    throw new Error(`${String(err)}\nchild stderr: ${stderr}`)
  } finally {
    proc.kill('SIGKILL')
    await exited
  }
  return { handled: journal(handledFile), acknowledged: journal(publishedFile).at(-1) ?? 0 }
}

async function readAll(dataDir: string, topic: Topic<Item>, groups: string[]) {
  const bus = createEmbeddedBus(
    { dataDir, partitions, retentionMs: 86_400_000, maxBatch },
    createTestRuntime(),
  )
  const markers = markerKeys()
  await bus.publish(
    topic,
    markers.map((key, i) => ({ key, value: { key, seq: -1 - i } })),
  )
  const seen = groups.map(() => [] as DeliveredRecord<Item>[])
  const subs = await Promise.all(
    groups.map((group, i) =>
      bus.subscribe<Item>(topic, group, async (batch) => {
        seen[i]?.push(...batch)
      }),
    ),
  )
  await waitFor(() => seen.every((s) => s.filter((r) => r.value.seq < 0).length === markers.length), {
    what: 'every end marker',
  })
  await Promise.all(subs.map((s) => s.stop()))
  await bus.close()
  return seen.map((s) => s.filter((r) => r.value.seq >= 0))
}

describe('embedded bus killed mid-stream', () => {
  for (const round of [1, 2]) {
    it(`loses nothing uncommitted and redelivers nothing committed (round ${round})`, async () => {
      const dataDir = tempDir('nerve-crash')
      const topic: Topic<Item> = { name: randomName('crash') }
      const group = randomName('group')
      const afterHandled = 20 + Math.floor(Math.random() * 300)
      try {
        const { handled, acknowledged } = await killMidStream(dataDir, topic.name, group, afterHandled)
        const [all = [], redelivered = []] = await readAll(dataDir, topic, ['audit', group])
        const published = all.map((r) => r.value.seq)
        const again = redelivered.map((r) => r.value.seq)
        const context = { afterHandled, handled: handled.length, acknowledged, published: published.length }

        // Publishes are whole and acknowledged ones durable: 0..n-1 with no gap, n >= acknowledged.
        expect(sorted(published), JSON.stringify(context)).toEqual(range(0, published.length))
        expect(published.length).toBeGreaterThanOrEqual(acknowledged)
        // Nothing handled twice by the child, nothing redelivered twice.
        expect(new Set(handled).size).toBe(handled.length)
        expect(new Set(again).size).toBe(again.length)
        // Handled ∪ redelivered = published: nothing uncommitted lost.
        expect(sorted([...new Set([...handled, ...again])])).toEqual(range(0, published.length))
        // The overlap is at most the batches not durably committed at the kill: two per partition.
        const overlap = redelivered.filter((r) => handled.includes(r.value.seq))
        for (let p = 0; p < partitions; p++) {
          const ofPartition = overlap.filter((r) => r.partition === p)
          expect(ofPartition.length, JSON.stringify({ ...context, partition: p })).toBeLessThanOrEqual(
            2 * maxBatch,
          )
        }
        // Per key, the redelivered records come in publish order.
        for (const [, values] of byKey(redelivered)) expect(values).toEqual(sorted(values))
      } finally {
        rmSync(dataDir, { recursive: true, force: true })
      }
    })
  }
})
