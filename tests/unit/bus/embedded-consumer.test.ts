import { describe, expect, it } from 'vitest'
import type { DeliveredRecord, Handled } from '../../../bus/bus.ts'
import {
  backoffMs,
  type ConsumedTopic,
  type ConsumerDeps,
  startConsumer,
} from '../../../bus/embedded-consumer.ts'
import { createLogger } from '../../../runtime/logger.ts'
import { createMetrics } from '../../../runtime/metrics.ts'
import { gate } from '../../helpers/gate.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'

describe('backoffMs', () => {
  it('doubles from 100 ms, jittered between half and all of it', () => {
    expect([1, 2, 3, 4].map((a) => backoffMs(a, () => 1))).toEqual([100, 200, 400, 800])
    expect([1, 2, 3, 4].map((a) => backoffMs(a, () => 0))).toEqual([50, 100, 200, 400])
  })

  it('is capped at 10 s however many attempts failed', () => {
    expect(backoffMs(8, () => 1)).toBe(10_000)
    expect(backoffMs(10_000, () => 1)).toBe(10_000)
  })
})

/** Reads a partition of six records. */
const readOfSix = (partition: number, from: number, limit: number): DeliveredRecord<string>[] =>
  Array.from({ length: Math.min(limit, 6 - from) }, (_, i) => ({
    key: 'agent-a',
    value: `record ${from + i}`,
    partition,
    offset: from + i,
  }))

/** Reads a partition up to the topic's head, which the test moves (an agent that goes on sending). */
const readToHead =
  (topic: ConsumedTopic) =>
  (partition: number, from: number, limit: number): DeliveredRecord<string>[] =>
    Array.from({ length: Math.min(limit, (topic.heads[0] ?? 0) - from) }, (_, i) => ({
      key: 'data-cleaner',
      value: `shell ${from + i}`,
      partition,
      offset: from + i,
    }))

/** Consumes `topic` from offset 0; every commit is durable at once and recorded in `commits`. */
function startRecordingConsumer(
  topic: ConsumedTopic,
  handle: (batch: readonly DeliveredRecord<string>[]) => Promise<Handled>,
  options: { read?: ConsumerDeps<string>['read']; maxBatch?: number } = {},
) {
  const commits: number[] = []
  const consumer = startConsumer<string>(topic, 'nerve-correlate', [0], handle, {
    read: options.read ?? readOfSix,
    log: createLogger({ level: 'silent' }),
    telemetry: createMetrics().component('test'),
    maxBatch: options.maxBatch ?? 2,
    commit: async (_partition, offset) => {
      commits.push(offset)
    },
    committed: () => {},
  })
  return { consumer, commits }
}

type Deferred = { offset: number; resolve(): void; reject(err: Error): void }

/** One partition of six records, batches of two; commits wait until the test settles them. */
function consumerOfSix() {
  const topic: ConsumedTopic = { id: 1, name: 'nerve.events.v1', partitions: 1, heads: [6] }
  const handled: number[][] = []
  const commits: Deferred[] = []
  /** Once set, every later commit is durable at once. */
  const settings = { autoCommit: false }
  const consumer = startConsumer<string>(
    topic,
    'nerve-correlate',
    [0],
    async (batch) => {
      handled.push(batch.map((r) => r.offset))
    },
    {
      read: readOfSix,
      log: createLogger({ level: 'silent' }),
      telemetry: createMetrics().component('test'),
      maxBatch: 2,
      commit: (_partition, offset) =>
        new Promise<void>((resolve, reject) => {
          commits.push({ offset, resolve, reject })
          if (settings.autoCommit) resolve()
        }),
      committed: () => {},
    },
  )
  return { consumer, handled, commits, settings }
}

describe('startConsumer', () => {
  it("handles a partition's next batch while the last commit syncs, and commits it only after that one", async () => {
    const { consumer, handled, commits } = consumerOfSix()
    await waitFor(() => handled.length === 2)
    expect(handled).toEqual([
      [0, 1],
      [2, 3],
    ])
    // The second batch was handled while the first commit was syncing; its commit waits for that one.
    expect(commits.map((c) => c.offset)).toEqual([2])
    commits[0]?.resolve()
    await waitFor(() => commits.length === 2)
    expect(commits.map((c) => c.offset)).toEqual([2, 4])
    commits[1]?.resolve()
    await waitFor(() => commits.length === 3)
    commits[2]?.resolve()
    await consumer.stop()
    expect(consumer.positions).toEqual([6])
  })

  it('rewinds to the last durable commit when a commit fails, and delivers those batches again', async () => {
    const { consumer, handled, commits, settings } = consumerOfSix()
    await waitFor(() => handled.length === 2)
    settings.autoCommit = true
    commits[0]?.reject(new Error('disk I/O error'))
    // After the backoff (at most 100 ms), from offset 0 again: nothing handled-but-uncommitted is skipped.
    await waitFor(() => consumer.positions[0] === 6 && commits.at(-1)?.offset === 6)
    await consumer.stop()
    expect(handled).toEqual([
      [0, 1],
      [2, 3],
      [0, 1],
      [2, 3],
      [4, 5],
    ])
    expect(commits.map((c) => c.offset)).toEqual([2, 2, 4, 6])
  })
})

describe('startConsumer whose commits keep failing (a full disk)', () => {
  it('backs off from 100 ms doubling, counting attempts until a commit is durable, one line per step', async () => {
    const topic: ConsumedTopic = { id: 1, name: 'nerve.events.v1', partitions: 1, heads: [6] }
    const rt = createTestRuntime()
    const disk = { full: true }
    const commits: number[] = []
    const consumer = startConsumer<string>(topic, 'nerve-correlate', [0], async () => {}, {
      read: readToHead(topic),
      log: rt.log,
      telemetry: rt.metrics.component('embedded_bus'),
      maxBatch: 6,
      commit: async (_partition, offset) => {
        if (disk.full) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
        commits.push(offset)
      },
      committed: () => {},
    })
    const failures = () => rt.logs.filter((l) => l.stage === 'commit')
    // The handler succeeds every time; only the commit fails: that is no reason to start counting again.
    await waitFor(() => failures().length === 4, { what: 'four failed commits' })
    disk.full = false
    await waitFor(() => commits.includes(6), { what: 'the commit durable' })
    expect(failures().map((l) => [l.level, l.msg, l.error_code, l.attempt])).toEqual(
      [1, 2, 3, 4].map((attempt) => [
        'warn',
        'Offset commit failed; the partition is delivered again from its last durable commit.',
        'STORAGE_FULL',
        attempt,
      ]),
    )
    // Jittered between half and all of 100, 200, 400, 800 ms.
    for (const [i, line] of failures().entries()) {
      expect(line.retry_in_ms).toBeGreaterThanOrEqual(50 * 2 ** i)
      expect(line.retry_in_ms).toBeLessThanOrEqual(100 * 2 ** i)
    }
    // Once durable, a later failure starts from the first step again.
    disk.full = true
    topic.heads[0] = 12
    consumer.wake()
    await waitFor(() => failures().length === 5, { what: 'the next failed commit' })
    expect(failures().at(-1)?.attempt).toBe(1)
    disk.full = false
    await consumer.stop()
  })
})

describe('startConsumer with a handler that holds commits back', () => {
  it('commits only up to the bound it resolves with, delivers on, and after a rejection delivers again from that bound', async () => {
    const topic: ConsumedTopic = { id: 1, name: 'nerve.events.v1', partitions: 1, heads: [6] }
    const handled: number[][] = []
    let failed = false
    const { consumer, commits } = startRecordingConsumer(topic, async (batch) => {
      const offsets = batch.map((r) => r.offset)
      handled.push(offsets)
      // Nothing durable after the first batch; the first two after the second; the third fails once.
      if (offsets[0] === 0) return { commit: 0 }
      if (offsets[0] === 2) return { commit: 2 }
      if (!failed) {
        failed = true
        throw new Error('checkpoint failed')
      }
    })
    await waitFor(() => commits.includes(6), { what: 'the last commit' })
    expect(handled).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
      [2, 3],
      [4, 5],
    ])
    // Never past a bound, never back: 0 was already the position, so the first batch commits nothing.
    expect(commits).toEqual([2, 6])
    await consumer.stop()
  })
})

describe('startConsumer with a handler that moves its bound outside a batch (advance)', () => {
  it('commits up to it between batches: never past what was handled, never back, once per move', async () => {
    const topic: ConsumedTopic = { id: 1, name: 'nerve.events.v1', partitions: 1, heads: [6] }
    const handled: number[] = []
    const lastBatch = gate()
    // A handler that saves nothing in its batches; the last batch waits until the test lets it go.
    const { consumer, commits } = startRecordingConsumer(topic, async (batch) => {
      if (batch[0]?.offset === 4) await lastBatch.held
      handled.push(...batch.map((r) => r.offset))
      return { commit: 0 }
    })
    await waitFor(() => handled.length === 4, { what: 'the first two batches' })
    // While the third batch is in flight, bounds wait for it, and go no further than it.
    const past = consumer.advance(0, 99)
    const within = consumer.advance(0, 3)
    expect(commits).toEqual([])
    lastBatch.release()
    await Promise.all([past, within])
    expect(handled).toEqual([0, 1, 2, 3, 4, 5])
    expect(commits).toEqual([6])
    await consumer.advance(0, 6)
    await consumer.advance(0, 2)
    expect(commits).toEqual([6])
    await consumer.stop()
  })
  it('commits during a steady stream, once for every bound asked meanwhile, and lets each asker go', async () => {
    // An agent that does not stop sending: a few more records land while each batch is handled.
    const topic: ConsumedTopic = { id: 1, name: 'nerve.events.v1', partitions: 1, heads: [10] }
    let streaming = true
    let handledUpTo = 0
    const { consumer, commits } = startRecordingConsumer(
      topic,
      async (batch) => {
        if (streaming) topic.heads[0] = (topic.heads[0] ?? 0) + batch.length
        await new Promise((resolve) => setImmediate(resolve))
        handledUpTo = (batch.at(-1)?.offset ?? 0) + 1
        // Nothing saved in the batches: only the timer's saves (advance) move the commit.
        return { commit: 0 }
      },
      { read: readToHead(topic), maxBatch: 5 },
    )
    await waitFor(() => handledUpTo >= 50, { what: 'ten batches' })
    const last = handledUpTo
    const bounds = [last - 10, last, last - 5]
    const asked = Promise.all(bounds.map((bound) => consumer.advance(0, bound)))
    // Committed while the stream goes on, not when it ends (200 more batches is long past its turn).
    const outcome = await Promise.race([
      asked.then(() => 'committed'),
      waitFor(() => handledUpTo >= last + 1_000, { what: '200 more batches' }).then(() => 'starved'),
    ])
    streaming = false
    await asked
    expect(outcome).toBe('committed')
    expect(commits).toEqual([Math.max(...bounds)])
    await consumer.stop()
  })
})

describe('startConsumer stopped in two steps (drain, then stop)', () => {
  it('reads no batch once drained, lets the one in flight commit, and still commits an advanced bound', async () => {
    // The agent keeps sending while nerve stops: records land after the drain began.
    const topic: ConsumedTopic = { id: 1, name: 'nerve.events.v1', partitions: 1, heads: [4] }
    const read: number[] = []
    const handled: number[] = []
    const secondBatch = gate()
    const { consumer, commits } = startRecordingConsumer(
      topic,
      async (batch) => {
        if (batch[0]?.offset === 2) await secondBatch.held
        handled.push(...batch.map((r) => r.offset))
        // Saved in its batches up to 1 only: the rest waits for a final save.
        return { commit: 2 }
      },
      {
        read: (partition, from, limit) => {
          const records = readToHead(topic)(partition, from, limit)
          read.push(...records.map((r) => r.offset))
          return records
        },
      },
    )
    await waitFor(() => read.length === 4, { what: 'the second batch in flight' })
    const drained = consumer.drain()
    topic.heads[0] = 10
    consumer.wake()
    secondBatch.release()
    await drained
    expect(handled).toEqual([0, 1, 2, 3])
    expect(commits).toEqual([2])
    // The final save of what was handled is committed after the drain, and nothing more is read.
    await consumer.advance(0, 4)
    expect(commits).toEqual([2, 4])
    await consumer.stop()
    expect(read).toEqual([0, 1, 2, 3])
  })
})
