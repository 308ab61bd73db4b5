// The S3 + SQS reader through startIngest, onto an in-memory bus, its queue and bucket a loopback stand-in
// that the real AWS SDK clients talk to (tests/helpers/aws-stand-in.ts). Shared by the reader's tests.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterEach } from 'vitest'
import { type DeadLetter, deadLetterTopic, eventsTopic } from '../../../bus/topics.ts'
import { createAwsClients } from '../../../ingest/s3-client.ts'
import { startIngest } from '../../../ingest/start-ingest.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config, NormalizedEvent } from '../../../schemas/types.ts'
import { type AwsStandIn, startAwsStandIn } from '../../helpers/aws-stand-in.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { fixture, fixtures } from './ingest-harness.ts'
import { createMemoryBus } from './memory-bus.ts'

export const envelope = (name: string) => readFileSync(join(fixtures, 'cloudtrail/envelopes', name), 'utf8')
export const stratus = fixture('cloudtrail/stratus-red-team-detonation-logs.ndjson')
  .toString()
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { eventID: string })
export const logFile = (records: unknown[]) => gzipSync(JSON.stringify({ Records: records }))
const credentials = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
}
export const prefix = 'AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/us-east-2/2024/07/30'

let cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const step of cleanup.reverse()) await step()
  cleanup = []
})

export async function startReader(
  s3Sqs: Partial<Config['ingest']['s3_sqs']>,
  http: Partial<Config['http']> = {},
) {
  const standIn = await startAwsStandIn()
  const queueUrl = standIn.createQueue('org-trail-notifications')
  const rt = createTestRuntime({ level: 'info' })
  const bus = createMemoryBus()
  const base = loadConfig({ env: { NERVE_DATA_DIR: tempDir('nerve-s3-sqs') } })
  const config: Config = {
    ...base,
    http: { ...base.http, ...http },
    ingest: {
      ...base.ingest,
      s3_sqs: { ...base.ingest.s3_sqs, queues: [queueUrl], wait_time: 1000, ...s3Sqs },
    },
  }
  const aws = createAwsClients({
    env: { AWS_ENDPOINT_URL_SQS: standIn.url, AWS_ENDPOINT_URL_S3: standIn.url },
    region: 'us-east-2',
    credentials,
    maxAttempts: 1,
  })
  const ingest = await startIngest(config, { bus, log: rt.log, metrics: rt.metrics, now: Date.now, aws })
  cleanup.push(async () => {
    await ingest.close()
    aws.close()
    await standIn.close()
  })
  const events = () => bus.records(eventsTopic).map((r) => r.value as NormalizedEvent)
  const deadLetters = () => bus.records(deadLetterTopic).map((r) => r.value as DeadLetter)
  const settled = (standIn: AwsStandIn) => standIn.messages(queueUrl).every((m) => m.deleted)
  return { standIn, queueUrl, rt, bus, ingest, events, deadLetters, settled: () => settled(standIn) }
}

/** A direct S3 event notification (the AWS docs example) naming `keys` of `bucket`, form-encoded as S3 does. */
export function notificationOf(bucket: string, ...keys: string[]): string {
  const body = JSON.parse(envelope('s3-event-notification-awsdocs-example.json'))
  const [record] = body.Records
  body.Records = keys.map((key) => {
    const copy = structuredClone(record)
    copy.s3.bucket.name = bucket
    copy.s3.object.key = encodeURIComponent(key).replace(/%2F/g, '/').replace(/%20/g, '+')
    return copy
  })
  return JSON.stringify(body)
}
