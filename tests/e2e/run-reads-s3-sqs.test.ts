// `nerve run` as a user runs it against an organisation trail: the Falco alert over HTTP, the CloudTrail
// record in a gzipped log file in S3 announced on SQS (through SNS), both read by the real process with the
// AWS SDK pointed at the loopback stand-in through the SDK's own endpoint variables: a correlation.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { type AwsStandIn, startAwsStandIn } from '../helpers/aws-stand-in.ts'
import { type NerveProcess, startNerve } from '../helpers/nerve-process.ts'
import { tempDir } from '../helpers/random-names.ts'
import { attachLogFile, attachRecord, falcoAlert } from '../helpers/shell-then-attach.ts'
import { waitFor } from '../helpers/wait-for.ts'

const token = 'nrv_e2e-s3-token-0123456789abcdef'
const key =
  'AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/us-east-1/2021/04/10/123456789012_CloudTrail_us-east-1_20210410T1930Z_e2e.json.gz'

let nerve: NerveProcess | undefined
let standIn: AwsStandIn | undefined
afterEach(async () => {
  await nerve?.stop()
  await standIn?.close()
  nerve = undefined
  standIn = undefined
})

describe('nerve run reading CloudTrail from S3 through SQS', { timeout: 90_000 }, () => {
  it('correlates a Falco alert posted over HTTP with a CloudTrail record read from S3 via SNS and SQS', async () => {
    standIn = await startAwsStandIn()
    const queueUrl = standIn.createQueue('org-trail-notifications')
    const dir = tempDir()
    writeFileSync(
      join(dir, 'nerve.yaml'),
      `agents:
  - id: alpine-debugger
    match:
      k8s: [{ namespace: default, pod: alpine }]
      aws: ["arn:aws:iam::123456789012:role/tester"]
ingest:
  s3_sqs:
    queues: ["${queueUrl}"]
    buckets: ["acme-org-trail"]
    wait_time: 1s
`,
    )
    nerve = await startNerve(['run', '--config', join(dir, 'nerve.yaml')], {
      NERVE_DATA_DIR: join(dir, 'data'),
      NERVE_INGEST_TOKEN: token,
      AWS_ENDPOINT_URL_SQS: standIn.url,
      AWS_ENDPOINT_URL_S3: standIn.url,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    })
    const res = await fetch(`${nerve.url}/v1/falco`, {
      method: 'POST',
      body: falcoAlert,
      headers: { authorization: `Bearer ${token}` },
    })
    expect(res.status).toBe(202)

    standIn.putObject('acme-org-trail', key, gzipSync(attachLogFile))
    const notification = { s3Bucket: 'acme-org-trail', s3ObjectKey: [key] }
    standIn.sendMessage(
      queueUrl,
      JSON.stringify({
        Type: 'Notification',
        MessageId: '63a3f6b6-d533-4a47-aef9-fcf5cf758c76',
        TopicArn: 'arn:aws:sns:us-east-1:123456789012:org-trail',
        Message: JSON.stringify(notification),
        Timestamp: '2021-04-10T19:35:00.000Z',
      }),
    )

    const [correlation] = await waitFor(
      async () => {
        const found = await fetch(`${(nerve as NerveProcess).url}/v1/correlations?agent=alpine-debugger`)
        const items = ((await found.json()) as { items: unknown[] }).items
        return items.length > 0 ? items : undefined
      },
      { timeoutMs: 30_000, what: 'the correlation' },
    )
    expect(correlation).toMatchObject({
      rule: { id: 'shell-then-iam-privilege-change' },
      core: { event_id: attachRecord.eventID, action: 'iam:AttachRolePolicy' },
    })
    // Deleted only once durable; counted once SQS answered the delete.
    await waitFor(
      async () =>
        standIn?.messages(queueUrl).every((m) => m.deleted) &&
        /nerve_s3_sqs_messages_total\{outcome="deleted"\} 1/.test(
          await (await fetch(`${(nerve as NerveProcess).url}/metrics`)).text(),
        ),
      { what: 'the message deleted and counted' },
    )
    const ready = (await (await fetch(`${nerve.url}/readyz`)).json()) as { checks: Record<string, unknown> }
    expect(ready.checks.s3_sqs).toEqual({ ok: true, optional: true })
    // The AWS SDK's warning about Node.js versions is not printed among nerve's lines.
    expect(nerve.stderr()).not.toContain('NodeVersionSupportWarning')
  })
})
