// What a watched agent that can send to the notification queue (or to the SNS topic feeding it) makes the S3
// + SQS reader do: name one log file many times to have its records read and published again and again,
// walk a key out of its allowed bucket with ".." segments (a store that resolves them serves another
// bucket's object), name an ARN instead of a bucket (an access point or Object Lambda answers for it), or
// name objects of the trail bucket that are not CloudTrail log files (their content would be copied into
// the dead letters). Real SDK clients against the loopback stand-in, as in s3-sqs-reader.test.ts.
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../../helpers/wait-for.ts'
import { logFile, notificationOf, prefix, startReader, stratus } from './s3-sqs-harness.ts'

const trail = 'acme-org-trail'
const gets = (t: Awaited<ReturnType<typeof startReader>>) =>
  t.standIn.requests.filter((r) => r.action === 'GetObject')

describe('S3 + SQS reader under forged notifications', () => {
  it('reads an object named many times, in one message or in several, once', async () => {
    const t = await startReader({ buckets: [trail] })
    const key = `${prefix}/123456789012_CloudTrail_us-east-2_20240730T2130Z_once.json.gz`
    t.standIn.putObject(trail, key, logFile(stratus.slice(0, 5)))
    t.standIn.sendMessage(t.queueUrl, notificationOf(trail, key))
    await waitFor(t.settled, { what: 'the first message deleted' })
    t.standIn.sendMessage(t.queueUrl, notificationOf(trail, key, key, key))
    t.standIn.sendMessage(t.queueUrl, notificationOf(trail, key))
    await waitFor(
      async () =>
        t.settled() && (await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'deleted' })) === 3,
      { what: 'every message deleted' },
    )
    expect(gets(t)).toHaveLength(1)
    expect(t.events()).toHaveLength(5)
    expect(await t.rt.metricValue('nerve_s3_sqs_objects_total', { outcome: 'read' })).toBe(1)
    expect(await t.rt.metricValue('nerve_s3_sqs_objects_total', { outcome: 'duplicate' })).toBe(4)
    expect(t.deadLetters()).toEqual([])
  })

  it('never fetches a key with ".." segments or a bucket that is an ARN, and dead-letters them at once', async () => {
    const t = await startReader({ buckets: [] })
    // A forged log file in a bucket nerve may not read from, reached from the trail bucket by "..".
    t.standIn.putObject('agent-bucket', `${prefix}/forged.json.gz`, logFile(stratus.slice(0, 3)))
    const walked = `${prefix}/../../../../../../../../../agent-bucket/${prefix}/forged.json.gz`
    t.standIn.sendMessage(t.queueUrl, notificationOf(trail, walked))
    const lambda = 'arn:aws:s3-object-lambda:us-east-2:111122223333:accesspoint/forged'
    t.standIn.sendMessage(t.queueUrl, notificationOf(lambda, `${prefix}/forged.json.gz`))
    await waitFor(
      async () =>
        t.settled() && (await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'deleted' })) === 2,
      { what: 'both messages deleted' },
    )
    expect(gets(t)).toEqual([])
    expect(t.events()).toEqual([])
    // Refused on the first receive: nothing a retry could mend.
    expect(t.standIn.messages(t.queueUrl).map((m) => m.receiveCount)).toEqual([1, 1])
    const reasons = t.deadLetters().map((d) => d.reason)
    expect(reasons).toHaveLength(2)
    expect(reasons.some((r) => r.includes('".."'))).toBe(true)
    expect(reasons.some((r) => r.includes('not an S3 bucket name'))).toBe(true)
    expect(await t.rt.metricValue('nerve_s3_sqs_objects_total', { outcome: 'refused' })).toBe(2)
  })

  it('skips objects of the bucket that are not CloudTrail log files, without fetching them', async () => {
    const t = await startReader({ buckets: [trail] })
    // AWS Config writes its snapshots to the same log-archive bucket; the agent may name anything there.
    const config =
      'AWSLogs/123456789012/Config/us-east-2/2024/7/30/ConfigSnapshot/123456789012_Config_us-east-2_ConfigSnapshot_20240730T213000Z_1b9a.json.gz'
    const snapshot = {
      fileVersion: '1.0',
      configSnapshotId: '1b9a0d5e-3f4c-4a57-9a3e-6f2d1c0b8e77',
      configurationItems: [{ resourceType: 'AWS::S3::Bucket', resourceName: 'acme-payroll' }],
    }
    t.standIn.putObject(trail, config, gzipSync(JSON.stringify(snapshot)))
    t.standIn.putObject(trail, 'exports/payroll-2024-07.json', '{"Records":[{"salary":1}]}')
    const key = `${prefix}/123456789012_CloudTrail_us-east-2_20240730T2130Z_real.json.gz`
    t.standIn.putObject(trail, key, logFile(stratus.slice(0, 2)))
    t.standIn.sendMessage(t.queueUrl, notificationOf(trail, config, 'exports/payroll-2024-07.json', key))
    await waitFor(
      async () =>
        t.settled() && (await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'deleted' })) === 1,
      { what: 'the message deleted' },
    )
    expect(gets(t).map((r) => decodeURIComponent(r.path.split('?')[0] ?? ''))).toEqual([`/${trail}/${key}`])
    expect(t.events()).toHaveLength(2)
    expect(t.deadLetters()).toEqual([])
    expect(await t.rt.metricValue('nerve_s3_sqs_objects_total', { outcome: 'not_cloudtrail' })).toBe(2)
  })

  it('dead-letters a log file of more records than http.max_items whole, not record by record', async () => {
    const t = await startReader({ buckets: [trail] }, { max_items: 1000 })
    // 5,000 empty records in 10 KiB of text: each would be an invalid record held and dead-lettered (about
    // 540 bytes of heap per 3 bytes of text), so 64 MiB of them, gzipped under 1 MiB, took gigabytes.
    const key = `${prefix}/123456789012_CloudTrail_us-east-2_20240730T2130Z_empty.json.gz`
    t.standIn.putObject(trail, key, gzipSync(`{"Records":[${Array(5000).fill('{}').join(',')}]}`))
    t.standIn.sendMessage(t.queueUrl, notificationOf(trail, key))
    await waitFor(
      async () =>
        t.settled() && (await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'deleted' })) === 1,
      { what: 'the message deleted' },
    )
    expect(t.deadLetters()).toHaveLength(1)
    expect(t.deadLetters()[0]).toMatchObject({ error_code: 'PAYLOAD_TOO_LARGE' })
    expect(t.deadLetters()[0]?.reason).toContain(`s3://${trail}/${key}`)
    expect(t.events()).toEqual([])
  })

  it('warns at start when any bucket may be read', async () => {
    const t = await startReader({ buckets: [] })
    expect(
      t.rt.logs.some((l) => l.level === 'warn' && l.component === 's3_sqs_reader' && /buckets/.test(l.msg)),
    ).toBe(true)
  })
})
