// Ingest instances on Kafka share the credential links they learn on the links topic (keyed by access key
// id). A link another instance learned must outlive this instance's restart: its consumer group resumes
// past the link, so only the local links file can give it back. The topic itself is created to keep one
// link per key, for no longer than a link is of use. Against the kafkajs double (no broker here).
import { describe, expect, it } from 'vitest'
import { createKafkaBus } from '../../../bus/kafka-bus.ts'
import { eventsTopic, identityLinksTopic } from '../../../bus/topics.ts'
import { startIngest } from '../../../ingest/start-ingest.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { createKafkaDouble } from '../bus/kafka-double.ts'
import { fixtureLines } from './ingest-harness.ts'

// sts:AssumeRole by pods.eks.amazonaws.com issuing ASIA37QFXJP5MQOWRZ6Q to ns-a/sa1/app1 (2024-04-16T09:20:04Z).
const issuePod = fixtureLines('cloudtrail/aws-samples-eks-pod-identity.ndjson')[2]
// A real Stratus record, re-signed with the issued key an hour later (the samples hold no such use).
const stratus = fixtureLines('cloudtrail/stratus-red-team-detonation-logs.ndjson')[0]
const use = (eventID: string) => ({
  ...stratus,
  eventTime: '2024-04-16T10:20:04Z',
  eventID,
  userIdentity: { ...stratus.userIdentity, accessKeyId: 'ASIA37QFXJP5MQOWRZ6Q' },
})
/** Wall time inside the key's lifetime: a link expired for a day is dropped when the file is read. */
const now = () => Date.parse('2024-04-16T10:30:00Z')

describe('identity links shared on Kafka', () => {
  it('reach the other instance, which still resolves the key after its own restart', async () => {
    const double = createKafkaDouble()
    const rt = createTestRuntime({ level: 'info' })
    const kafka = loadConfig({ env: { NERVE_KAFKA_BROKERS: 'double:9092' } }).kafka
    const openBus = () => createKafkaBus(kafka, { ...rt, createClient: double.createClient })
    const dataDir = tempDir('nerve-kafka-links')
    const config = (n: number) => loadConfig({ env: { NERVE_DATA_DIR: `${dataDir}/ingest-${n}` } })
    const start = async (n: number, instance: string) => {
      const bus = await openBus()
      const ingest = await startIngest(config(n), { bus, log: rt.log, metrics: rt.metrics, now, instance })
      const handle = (record: object) =>
        ingest.cloudTrailTopicReader.handle(
          'cloudtrail',
          [{ value: Buffer.from(JSON.stringify(record)), partition: 0, offset: 0 }],
          now(),
        )
      const close = async () => {
        await ingest.close()
        await bus.close()
      }
      return { handle, close }
    }
    const reader = await openBus()
    const seen = new Map<string, NormalizedEvent>()
    const sub = await reader.subscribe(eventsTopic, 'test-reader', async (batch) => {
      for (const r of batch) seen.set(r.value.id, r.value)
    })
    // A core event's id is its CloudTrail eventID.
    const published = (eventID: string) => seen.get(eventID) as NormalizedEvent

    const a = await start(1, 'a')
    let b = await start(2, 'b')
    await a.handle(issuePod)
    let tries = 0
    await waitFor(
      async () => {
        const id = `use-before-restart-${tries++}`
        await b.handle(use(id))
        await waitFor(() => published(id) !== undefined, { what: `event ${id} on the events topic` })
        return published(id).agent.resolved_by === 'stitched'
      },
      { what: 'instance b to resolve through the link instance a learned' },
    )
    // b restarts under the same instance name: its links group resumes after the link.
    await b.close()
    b = await start(2, 'b')
    await b.handle(use('use-after-restart'))
    await waitFor(() => published('use-after-restart') !== undefined, { what: 'the event after the restart' })
    expect(published('use-after-restart').agent).toMatchObject({ id: 'ns-a/app1', resolved_by: 'stitched' })

    const links = double.created.find((t) => t.topic === identityLinksTopic.name)
    expect(links?.configEntries).toEqual(
      expect.arrayContaining([
        { name: 'cleanup.policy', value: 'compact,delete' },
        { name: 'retention.ms', value: String(2 * 24 * 3_600_000) },
      ]),
    )
    await sub.stop()
    await Promise.all([a.close(), b.close()])
    await reader.close()
  })
})
