// Two ingest instances on one bus resolve alike (a link one learns reaches the other), and CloudTrail read
// from a Kafka topic decodes like POST /v1/cloudtrail, with unreadable records dead-lettered as bytes.
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { createEmbeddedBus } from '../../../bus/embedded-bus.ts'
import { type DeadLetter, deadLetterTopic, eventsTopic } from '../../../bus/topics.ts'
import { startIngest } from '../../../ingest/start-ingest.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { fixtureLines } from './ingest-harness.ts'
import { createMemoryBus } from './memory-bus.ts'

// sts:AssumeRole by pods.eks.amazonaws.com issuing ASIA37QFXJP5MQOWRZ6Q to ns-a/sa1/app1 (2024-04-16T09:20:04Z).
const issuePod = fixtureLines('cloudtrail/aws-samples-eks-pod-identity.ndjson')[2]
// A real Stratus record, re-signed with the issued key an hour later (the samples hold no such use).
const stratus = fixtureLines('cloudtrail/stratus-red-team-detonation-logs.ndjson')[0]
const podUse = {
  ...stratus,
  eventTime: '2024-04-16T10:20:04Z',
  eventID: 'use-pod-shared-1',
  userIdentity: { ...stratus.userIdentity, accessKeyId: 'ASIA37QFXJP5MQOWRZ6Q' },
}

describe('ingest across instances and from Kafka topics', () => {
  it('shares a learned credential link: the other instance resolves the next call to the pod', async () => {
    const dataDir = tempDir('nerve-links')
    const rt = createTestRuntime({ level: 'info' })
    const bus = createEmbeddedBus({ dataDir, partitions: 2, retentionMs: 3_600_000, maxBatch: 100 }, rt)
    const config = (n: number) => loadConfig({ env: { NERVE_DATA_DIR: `${dataDir}/ingest-${n}` } })
    const deps = (instance: string) => ({ bus, log: rt.log, metrics: rt.metrics, now: Date.now, instance })
    const a = await startIngest(config(1), deps('a'))
    const b = await startIngest(config(2), deps('b'))
    await a.cloudTrailTopicReader.handle(
      'cloudtrail',
      [{ value: Buffer.from(JSON.stringify(issuePod)), partition: 0, offset: 0 }],
      0,
    )

    const seen: NormalizedEvent[] = []
    const sub = await bus.subscribe(eventsTopic, 'test-reader', async (batch) => {
      seen.push(...batch.map((r) => r.value))
    })
    await waitFor(
      async () => {
        await b.cloudTrailTopicReader.handle(
          'cloudtrail',
          [
            {
              value: Buffer.from(JSON.stringify({ ...podUse, eventID: `use-${seen.length}` })),
              partition: 0,
              offset: 1,
            },
          ],
          0,
        )
        return seen.some((e) => e.agent.resolved_by === 'stitched')
      },
      { what: 'instance b to resolve through the link instance a learned' },
    )
    expect(seen.find((e) => e.agent.resolved_by === 'stitched')?.agent.id).toBe('ns-a/app1')
    await sub.stop()
    await a.close()
    await b.close()
    await bus.close()
  })

  it('reads log files (gzip too) from a topic and dead-letters records it cannot read, with their bytes', async () => {
    const rt = createTestRuntime({ level: 'info' })
    const bus = createMemoryBus()
    const config = loadConfig({ env: { NERVE_DATA_DIR: tempDir('nerve-topic') } })
    const ingest = await startIngest(config, { bus, log: rt.log, metrics: rt.metrics, now: Date.now })
    const logFile = gzipSync(JSON.stringify({ Records: [issuePod, podUse] }))
    const garbage = Buffer.from([0x1f, 0x8b, 0x00, 0x01])
    await ingest.cloudTrailTopicReader.handle(
      'org-cloudtrail',
      [
        { value: logFile, partition: 3, offset: 41 },
        { value: garbage, partition: 3, offset: 42 },
      ],
      Date.now(),
    )
    expect(bus.records(eventsTopic).map((r) => r.value.via)).toEqual(['kafka', 'kafka'])
    const [letter] = bus.records<DeadLetter>(deadLetterTopic).map((r) => r.value)
    expect(letter).toMatchObject({
      component: 'kafka_cloudtrail_reader',
      error_code: 'INPUT_INVALID',
      reason: expect.stringContaining('org-cloudtrail[3]@42'),
      original: garbage.toString('base64'),
      original_encoding: 'base64',
    })
    await ingest.close()
  })

  it('dead-letters a record of more records than http.max_items whole, not record by record', async () => {
    const rt = createTestRuntime({ level: 'info' })
    const bus = createMemoryBus()
    const base = loadConfig({ env: { NERVE_DATA_DIR: tempDir('nerve-topic') } })
    const config = { ...base, http: { ...base.http, max_items: 1000 } }
    const ingest = await startIngest(config, { bus, log: rt.log, metrics: rt.metrics, now: Date.now })
    // Whoever may produce to the topic: 5,000 empty records in one gzipped value of a few hundred bytes.
    const empties = gzipSync(`{"Records":[${Array(5000).fill('{}').join(',')}]}`)
    await ingest.cloudTrailTopicReader.handle(
      'org-cloudtrail',
      [{ value: empties, partition: 0, offset: 7 }],
      Date.now(),
    )
    const letters = bus.records<DeadLetter>(deadLetterTopic).map((r) => r.value)
    expect(letters).toHaveLength(1)
    expect(letters[0]).toMatchObject({
      component: 'kafka_cloudtrail_reader',
      error_code: 'PAYLOAD_TOO_LARGE',
      reason: expect.stringContaining('org-cloudtrail[0]@7'),
    })
    await ingest.close()
  })
})
