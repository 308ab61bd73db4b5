// SQS message bodies → the S3 objects to read: the real envelopes (tests/fixtures/cloudtrail/envelopes),
// form-encoded keys, digests set apart, other event names ignored, and bodies that name too much or nothing.
import { describe, expect, it } from 'vitest'
import { decodeS3EventKey, parseS3Notification } from '../../../ingest/s3-event-notification.ts'
import { fixture } from './ingest-harness.ts'

const envelope = (name: string) => fixture(`cloudtrail/envelopes/${name}`).toString()
const s3Event = JSON.parse(envelope('s3-event-notification-awsdocs-example.json'))

describe('S3 notifications on SQS', () => {
  it('reads a direct S3 event notification, its key form-decoded', () => {
    const body = structuredClone(s3Event)
    body.Records[0].s3.object.key = 'AWSLogs/123456789012/CloudTrail/us-east-1/2024/07/30/a+b%3Ac.json.gz'
    expect(parseS3Notification(JSON.stringify(body))).toEqual({
      kind: 'objects',
      objects: [
        {
          bucket: 'mybucket',
          key: 'AWSLogs/123456789012/CloudTrail/us-east-1/2024/07/30/a b:c.json.gz',
          size: 1024,
        },
      ],
      digests: [],
      other: [],
      refused: [],
      duplicates: 0,
      ignored: 0,
    })
    expect(decodeS3EventKey('100%25+sure')).toBe('100% sure')
    expect(decodeS3EventKey('broken%E0%A4%A')).toBe('broken%E0%A4%A')
  })

  it("reads the same inside an SNS envelope, and CloudTrail's own SNS notification (keys as they are)", () => {
    const wrapped = JSON.stringify({ Type: 'Notification', Message: JSON.stringify(s3Event) })
    // The AWS docs example names a photo: not where CloudTrail writes, so not read.
    expect(parseS3Notification(wrapped)).toMatchObject({
      kind: 'objects',
      objects: [],
      other: [{ key: 'HappyFace.jpg' }],
    })
    const cloudtrail = parseS3Notification(envelope('sqs-body-sns-cloudtrail-notification.json'))
    expect(cloudtrail).toMatchObject({ kind: 'objects', digests: [] })
    expect(cloudtrail.kind === 'objects' && cloudtrail.objects.map((o) => o.bucket)).toEqual([
      'your-bucket-name',
      'your-bucket-name',
      'your-bucket-name',
    ])
  })

  it('knows the test event, sets digests apart and ignores events other than ObjectCreated', () => {
    expect(parseS3Notification(envelope('s3-event-notification-testevent-awsdocs.json'))).toEqual({
      kind: 'test',
    })
    const body = structuredClone(s3Event)
    const digest = structuredClone(body.Records[0])
    digest.s3.object.key = 'AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/07/30/d.json.gz'
    const removed = structuredClone(body.Records[0])
    removed.eventName = 'ObjectRemoved:Delete'
    body.Records.push(digest, removed)
    const parsed = parseS3Notification(JSON.stringify(body))
    expect(parsed).toMatchObject({ kind: 'objects', ignored: 1 })
    expect(parsed.kind === 'objects' && parsed.digests.map((d) => d.key)).toEqual([digest.s3.object.key])
  })

  it("reads S3's EventBridge event (keys as they are) and ignores its other detail types", () => {
    // The AWS docs example of an EventBridge "Object Created" event, naming a CloudTrail log file.
    const key =
      'AWSLogs/111122223333/CloudTrail/ca-central-1/2021/11/12/111122223333_CloudTrail_ca-central-1_20211112T0000Z_a:b.json.gz'
    const event = {
      version: '0',
      id: '17793124-05d4-b198-2fde-7ededc63b103',
      'detail-type': 'Object Created',
      source: 'aws.s3',
      account: '111122223333',
      time: '2021-11-12T00:00:00Z',
      region: 'ca-central-1',
      resources: ['arn:aws:s3:::amzn-s3-demo-bucket1'],
      detail: {
        version: '0',
        bucket: { name: 'amzn-s3-demo-bucket1' },
        object: { key, size: 5, etag: 'b1946ac92492d2347c6235b4d2611184', sequencer: '00617F08299329D189' },
        'request-id': 'N4N7GDK58NMKJ12R',
        requester: '123456789012',
        'source-ip-address': '1.2.3.4',
        reason: 'PutObject',
      },
    }
    expect(parseS3Notification(JSON.stringify(event))).toMatchObject({
      kind: 'objects',
      objects: [{ bucket: 'amzn-s3-demo-bucket1', key, size: 5 }],
    })
    const deleted = { ...event, 'detail-type': 'Object Deleted' }
    expect(parseS3Notification(JSON.stringify(deleted))).toMatchObject({
      kind: 'objects',
      objects: [],
      ignored: 1,
    })
  })

  it('refuses names S3 would not give, sets apart keys that are not log files, and lists each object once', () => {
    const key = 'AWSLogs/123456789012/CloudTrail/us-east-1/2024/07/30/a.json.gz'
    const body = {
      s3Bucket: 'acme-trail',
      s3ObjectKey: [
        key,
        key,
        `${key}/../../../../../../../../other-bucket/${key}`,
        `logs/${'x'.repeat(1100)}`,
        'AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2024/07/30/i.json.gz',
        'AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/07/30/f.log.gz',
        `trail-prefix/AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/eu-west-1/2024/07/30/b.json.gz`,
      ],
    }
    const parsed = parseS3Notification(JSON.stringify(body))
    expect(parsed).toMatchObject({ kind: 'objects', duplicates: 1 })
    if (parsed.kind !== 'objects') return
    expect(parsed.objects.map((o) => o.key)).toEqual([key, body.s3ObjectKey[6]])
    expect(parsed.other.map((o) => o.key)).toEqual([body.s3ObjectKey[4], body.s3ObjectKey[5]])
    expect(parsed.refused.map((o) => o.reason)).toEqual([
      'the key has a "." or ".." segment.',
      'the key is over 1024 bytes.',
    ])
    const arn = { s3Bucket: 'arn:aws:s3:us-east-1:111122223333:accesspoint/ap', s3ObjectKey: [key] }
    expect(parseS3Notification(JSON.stringify(arn))).toMatchObject({
      refused: [{ reason: 'the bucket is not an S3 bucket name.' }],
    })
  })

  it('refuses bodies that are not notifications, or that name more objects than one message may', () => {
    expect(parseS3Notification('not json')).toMatchObject({ kind: 'unreadable' })
    expect(parseS3Notification('{"hello":"world"}')).toMatchObject({ kind: 'unreadable' })
    expect(parseS3Notification('{"Records":[]}')).toMatchObject({ kind: 'unreadable' })
    const many = { s3Bucket: 'b', s3ObjectKey: Array.from({ length: 101 }, (_, i) => `k${i}`) }
    expect(parseS3Notification(JSON.stringify(many))).toMatchObject({
      kind: 'unreadable',
      reason: expect.stringContaining('101 objects'),
    })
  })
})
