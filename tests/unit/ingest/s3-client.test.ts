// The SDK clients from createAwsClients against the loopback stand-in: endpoints from the SDK's own
// variables, path-style S3, SQS's JSON protocol (MD5 checked by the SDK), ListObjectsV2 paging.
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAwsClients, endpointFromEnv, regionOfQueueUrl } from '../../../ingest/s3-client.ts'
import { type AwsStandIn, startAwsStandIn } from '../../helpers/aws-stand-in.ts'

const credentials = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
}

describe('createAwsClients against the AWS stand-in', () => {
  let standIn: AwsStandIn
  let clients: ReturnType<typeof createAwsClients>
  beforeAll(async () => {
    standIn = await startAwsStandIn()
    clients = createAwsClients({
      env: { AWS_ENDPOINT_URL_S3: standIn.url, AWS_ENDPOINT_URL_SQS: standIn.url },
      region: 'us-east-1',
      credentials,
    })
  })
  afterAll(async () => {
    clients.close()
    await standIn.close()
  })

  it('picks the service variable over the general one, and none when told to ignore them', () => {
    expect(endpointFromEnv('S3', { AWS_ENDPOINT_URL: 'http://a', AWS_ENDPOINT_URL_S3: 'http://b' })).toBe(
      'http://b',
    )
    expect(endpointFromEnv('SQS', { AWS_ENDPOINT_URL: 'http://a', AWS_ENDPOINT_URL_S3: 'http://b' })).toBe(
      'http://a',
    )
    expect(
      endpointFromEnv('SQS', { AWS_ENDPOINT_URL: 'http://a', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }),
    ).toBeUndefined()
  })

  it("signs each queue's requests for the region in its URL, unless an endpoint or a region is set", async () => {
    expect(regionOfQueueUrl('https://sqs.eu-west-1.amazonaws.com/123456789012/q')).toBe('eu-west-1')
    expect(regionOfQueueUrl('https://ap-south-1.queue.amazonaws.com/123456789012/q')).toBe('ap-south-1')
    expect(regionOfQueueUrl('http://127.0.0.1:4566/000000000000/q')).toBeUndefined()
    const plain = createAwsClients({ env: {}, credentials, fallbackRegion: 'us-east-1' })
    const eu = plain.sqsFor('https://sqs.eu-west-1.amazonaws.com/123456789012/q')
    expect(await eu.config.region()).toBe('eu-west-1')
    expect(plain.sqsFor('https://sqs.eu-west-1.amazonaws.com/123456789012/other')).toBe(eu)
    plain.close()
    expect(clients.sqsFor('https://sqs.eu-west-1.amazonaws.com/123456789012/q')).toBe(clients.sqs)
  })

  it('receives, extends and deletes over the JSON protocol', async () => {
    const queueUrl = standIn.createQueue('cloudtrail-notifications')
    standIn.sendMessage(queueUrl, '{"Records":[]}')
    const got = await clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      }),
    )
    expect(got.Messages).toHaveLength(1)
    const message = got.Messages?.[0]
    expect(message?.Attributes?.ApproximateReceiveCount).toBe('1')
    await clients.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: message?.ReceiptHandle,
        VisibilityTimeout: 60,
      }),
    )
    await clients.sqs.send(
      new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message?.ReceiptHandle }),
    )
    expect(standIn.messages(queueUrl)[0]?.deleted).toBe(true)
    await expect(
      clients.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: 'stale' })),
    ).rejects.toMatchObject({ name: 'ReceiptHandleIsInvalid' })
    expect(standIn.requests.filter((r) => r.service === 'sqs').map((r) => r.action)).toEqual([
      'ReceiveMessage',
      'ChangeMessageVisibility',
      'DeleteMessage',
      'DeleteMessage',
    ])
  })

  it('gets objects path-style, keys with spaces and colons included, and pages ListObjectsV2', async () => {
    const key = 'AWSLogs/o-abc/123456789012/CloudTrail/us-east-1/2026/01/01/file name:1.json.gz'
    standIn.putObject('org-trail', key, 'hello')
    for (let i = 0; i < 5; i++) standIn.putObject('org-trail', `AWSLogs/x/${i}.json`, `${i}`)
    const object = await clients.s3.send(new GetObjectCommand({ Bucket: 'org-trail', Key: key }))
    expect(await object.Body?.transformToString()).toBe('hello')
    const path = standIn.requests.filter((r) => r.action === 'GetObject').pop()?.path ?? ''
    expect(path.startsWith('/org-trail/AWSLogs/')).toBe(true)
    const keys: string[] = []
    let token: string | undefined
    do {
      const page = await clients.s3.send(
        new ListObjectsV2Command({
          Bucket: 'org-trail',
          Prefix: 'AWSLogs/x/',
          MaxKeys: 2,
          ContinuationToken: token,
        }),
      )
      keys.push(...(page.Contents ?? []).map((c) => c.Key ?? ''))
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
    expect(keys).toEqual([0, 1, 2, 3, 4].map((i) => `AWSLogs/x/${i}.json`))
    await expect(
      clients.s3.send(new GetObjectCommand({ Bucket: 'org-trail', Key: 'missing' })),
    ).rejects.toMatchObject({
      name: 'NoSuchKey',
    })
  })
})
