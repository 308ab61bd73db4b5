// The S3 + SQS reader end to end: the real AWS SDK clients against the loopback stand-in (SQS JSON
// protocol, S3 path-style GET), through startIngest, onto a bus. The four kinds of message a CloudTrail
// queue receives (S3 test event, a CloudTrail-Digest/ object, a direct S3 notification with a form-encoded
// key, CloudTrail's SNS notification in its SNS envelope), plus the failures: a message that keeps failing
// is dead-lettered with its reason after max_receives, an object in a bucket not allowed is refused, a
// slow bus keeps the message hidden (visibility extended) and deletes it only once durable.
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { eventsTopic } from '../../../bus/topics.ts'
import { NerveError } from '../../../runtime/errors.ts'
import { gate } from '../../helpers/gate.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { envelope, logFile, prefix, startReader as start, stratus } from './s3-sqs-harness.ts'

describe('CloudTrail from S3 through SQS', () => {
  it('reads direct and SNS-wrapped notifications, skips test events and digests, deletes each once durable', async () => {
    const t = await start({})
    // Direct S3 notification: a key with a space and a colon, form-encoded as S3 sends it.
    const directKey = `${prefix}/123456789012_CloudTrail_us-east-2_20240730T2130Z_a b:c.json.gz`
    t.standIn.putObject('acme-org-trail', directKey, logFile(stratus.slice(0, 10)))
    const direct = JSON.parse(envelope('s3-event-notification-awsdocs-example.json'))
    direct.Records[0].s3.bucket.name = 'acme-org-trail'
    direct.Records[0].s3.object.key = encodeURIComponent(directKey).replace(/%2F/g, '/').replace(/%20/g, '+')
    // CloudTrail's SNS notification inside the SNS envelope: three plain keys, one of them a .json file.
    const sns = JSON.parse(envelope('sqs-body-sns-cloudtrail-notification.json'))
    const snsMessage = JSON.parse(sns.Message)
    const [k1, k2, k3] = snsMessage.s3ObjectKey as string[]
    t.standIn.putObject(snsMessage.s3Bucket, k1 as string, logFile(stratus.slice(10, 20)))
    t.standIn.putObject(snsMessage.s3Bucket, k2 as string, logFile(stratus.slice(20, 25)))
    const plainKey = (k3 as string).replace(/\.gz$/, '')
    snsMessage.s3ObjectKey[2] = plainKey
    t.standIn.putObject(snsMessage.s3Bucket, plainKey, envelope('s3-log-file-awsdocs-example.json'))
    sns.Message = JSON.stringify(snsMessage)
    // A digest object: named, never fetched.
    const digest = JSON.parse(envelope('s3-event-notification-awsdocs-example.json'))
    digest.Records[0].s3.bucket.name = 'acme-org-trail'
    digest.Records[0].s3.object.key =
      'AWSLogs/123456789012/CloudTrail-Digest/us-east-2/2015/08/17/123456789012_CloudTrail-Digest_us-east-2_trail_us-east-2_20150817T150131Z.json.gz'

    t.standIn.sendMessage(t.queueUrl, envelope('s3-event-notification-testevent-awsdocs.json'))
    t.standIn.sendMessage(t.queueUrl, JSON.stringify(digest))
    t.standIn.sendMessage(t.queueUrl, JSON.stringify(direct))
    t.standIn.sendMessage(t.queueUrl, JSON.stringify(sns))

    // The stand-in marks a message deleted as the request arrives; the reader counts it once answered.
    const handled = async () =>
      (await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'deleted' })) === 3 &&
      (await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'test_event' })) === 1
    await waitFor(async () => t.settled() && (await handled()), { what: 'every message deleted' })
    const ids = t.events().map((e) => e.id)
    expect(t.events()).toHaveLength(26)
    for (const record of stratus.slice(0, 25)) expect(ids).toContain(record.eventID)
    expect(t.deadLetters()).toEqual([])
    const gets = t.standIn.requests
      .filter((r) => r.action === 'GetObject')
      .map((r) => decodeURIComponent(r.path.split('?')[0] ?? ''))
    expect(gets).toHaveLength(4)
    expect(gets.some((p) => p.includes('CloudTrail-Digest'))).toBe(false)
    expect(gets).toContain(`/acme-org-trail/${directKey}`)
    expect(await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'test_event' })).toBe(1)
    expect(await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'deleted' })).toBe(3)
    expect(await t.rt.metricValue('nerve_s3_sqs_objects_total', { outcome: 'digest_skipped' })).toBe(1)
    expect(await t.rt.metricValue('nerve_s3_sqs_objects_total', { outcome: 'read' })).toBe(4)
    expect(await t.rt.metricValue('nerve_s3_sqs_bytes_total')).toBeGreaterThan(1000)
    expect(await t.rt.metricValue('nerve_component_sent_events_total', { component: 's3_sqs_reader' })).toBe(
      26,
    )
    expect(t.ingest.readiness.s3_sqs?.()).toEqual({ ok: true, optional: true })
  })

  it('dead-letters a message that keeps failing, with its reason, after max_receives', async () => {
    const t = await start({ visibility_timeout: 1000, max_receives: 2 })
    t.standIn.putObject('acme-org-trail', `${prefix}/denied.json.gz`, logFile(stratus.slice(0, 2)))
    t.standIn.failNext('GetObject', { status: 403, code: 'AccessDenied', message: 'Access Denied' }, 10)
    const note = JSON.parse(envelope('s3-event-notification-awsdocs-example.json'))
    note.Records[0].s3.bucket.name = 'acme-org-trail'
    note.Records[0].s3.object.key = `${prefix}/denied.json.gz`
    t.standIn.sendMessage(t.queueUrl, JSON.stringify(note))

    // The stand-in marks the message deleted as the request arrives; the reader counts it once answered.
    const deadLettered = async () =>
      t.settled() &&
      (await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'dead_lettered' })) === 1
    await waitFor(deadLettered, {
      what: 'the failing message to be dead-lettered and deleted',
      timeoutMs: 15_000,
    })
    const [message] = t.standIn.messages(t.queueUrl)
    expect(message?.receiveCount).toBe(2)
    const [dead] = t.deadLetters()
    expect(dead?.component).toBe('s3_sqs_reader')
    expect(dead?.reason).toMatch(
      /failed 2 receives; last: s3:\/\/acme-org-trail\/.*denied\.json\.gz: AccessDenied/,
    )
    expect(JSON.parse(dead?.original ?? '{}')).toEqual(note)
    expect(await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'retried' })).toBe(1)
    expect(await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'dead_lettered' })).toBe(1)
    expect(t.events()).toEqual([])
  })

  it('refuses objects outside ingest.s3_sqs.buckets and unreadable bodies, and still deletes the message', async () => {
    const t = await start({ buckets: ['acme-org-trail'] })
    const elsewhere = JSON.parse(envelope('s3-event-notification-awsdocs-example.json'))
    elsewhere.Records[0].s3.bucket.name = 'someone-elses-bucket'
    elsewhere.Records[0].s3.object.key = 'secrets.json'
    t.standIn.putObject('someone-elses-bucket', 'secrets.json', '{"Records":[]}')
    t.standIn.sendMessage(t.queueUrl, JSON.stringify(elsewhere))
    t.standIn.sendMessage(t.queueUrl, 'not json at all')
    await waitFor(t.settled, { what: 'both messages deleted' })
    expect(t.standIn.requests.some((r) => r.action === 'GetObject')).toBe(false)
    const reasons = t.deadLetters().map((d) => d.reason)
    expect(reasons).toHaveLength(2)
    expect(
      reasons.some((r) => r.includes('s3://someone-elses-bucket/secrets.json') && r.includes('buckets')),
    ).toBe(true)
    expect(reasons.some((r) => r.includes('not a JSON object'))).toBe(true)
  })

  it('dead-letters a gzip bomb at max_object_bytes without inflating it, and deletes the message', async () => {
    const t = await start({ max_object_bytes: 1024 * 1024 })
    // 64 MiB of zeros in about 64 KiB: what a forged log file could hold.
    t.standIn.putObject('acme-org-trail', `${prefix}/bomb.json.gz`, gzipSync(Buffer.alloc(64 * 1024 * 1024)))
    const note = JSON.parse(envelope('s3-event-notification-awsdocs-example.json'))
    note.Records[0].s3.bucket.name = 'acme-org-trail'
    note.Records[0].s3.object.key = `${prefix}/bomb.json.gz`
    t.standIn.sendMessage(t.queueUrl, JSON.stringify(note))
    await waitFor(
      async () =>
        t.settled() && (await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'deleted' })) === 1,
      { what: 'the message deleted' },
    )
    const [dead] = t.deadLetters()
    expect(dead).toMatchObject({ component: 's3_sqs_reader', error_code: 'PAYLOAD_TOO_LARGE' })
    expect(dead?.reason).toContain(`s3://acme-org-trail/${prefix}/bomb.json.gz`)
    expect(t.events()).toEqual([])
  })

  it('stops reading an object served without Content-Length at max_object_bytes', async () => {
    const t = await start({ max_object_bytes: 1024 * 1024 })
    // A real log file, padded to 3 MiB and not compressed: nothing but the bytes read can tell its size.
    const padded = `${JSON.stringify({ Records: stratus.slice(0, 2) })}${' '.repeat(3 * 1024 * 1024)}`
    t.standIn.putObject('acme-org-trail', `${prefix}/streamed.json`, padded, { chunked: true })
    const note = JSON.parse(envelope('s3-event-notification-awsdocs-example.json'))
    note.Records[0].s3.bucket.name = 'acme-org-trail'
    note.Records[0].s3.object.key = `${prefix}/streamed.json`
    t.standIn.sendMessage(t.queueUrl, JSON.stringify(note))
    await waitFor(t.settled, { what: 'the message deleted' })
    const [dead] = t.deadLetters()
    expect(dead).toMatchObject({ component: 's3_sqs_reader', error_code: 'PAYLOAD_TOO_LARGE' })
    expect(t.events()).toEqual([])
    expect(await t.rt.metricValue('nerve_s3_sqs_bytes_total')).toBe(0)
  })

  it('keeps a message hidden while the bus is slow and deletes it only after the publish is durable', async () => {
    const t = await start({ visibility_timeout: 1000 })
    t.standIn.putObject('acme-org-trail', `${prefix}/slow.json.gz`, logFile(stratus.slice(0, 3)))
    const { held, release } = gate()
    t.bus.before = async (topic) => {
      if (topic.name === eventsTopic.name) await held
    }
    const note = JSON.parse(envelope('s3-event-notification-awsdocs-example.json'))
    note.Records[0].s3.bucket.name = 'acme-org-trail'
    note.Records[0].s3.object.key = `${prefix}/slow.json.gz`
    t.standIn.sendMessage(t.queueUrl, JSON.stringify(note))
    await waitFor(
      () => t.standIn.requests.filter((r) => r.action === 'ChangeMessageVisibility').length >= 3,
      { what: 'the visibility timeout extended while the bus holds the publish' },
    )
    const [message] = t.standIn.messages(t.queueUrl)
    expect(message?.deleted).toBe(false)
    expect(message?.receiveCount).toBe(1)
    release()
    await waitFor(t.settled, { what: 'the message deleted once the publish resolved' })
    expect(t.events()).toHaveLength(3)
  })
  it('keeps every message of a receive hidden, also those waiting behind a slow one for their turn', async () => {
    const t = await start({ visibility_timeout: 1000, concurrency: 1 })
    const { held, release } = gate()
    t.bus.before = async (topic) => {
      if (topic.name === eventsTopic.name) await held
    }
    for (const [n, name] of ['first', 'second'].entries()) {
      t.standIn.putObject('acme-org-trail', `${prefix}/${name}.json.gz`, logFile(stratus.slice(n, n + 1)))
      const note = JSON.parse(envelope('s3-event-notification-awsdocs-example.json'))
      note.Records[0].s3.bucket.name = 'acme-org-trail'
      note.Records[0].s3.object.key = `${prefix}/${name}.json.gz`
      t.standIn.sendMessage(t.queueUrl, JSON.stringify(note))
    }
    await waitFor(() => t.standIn.messages(t.queueUrl).every((m) => m.receiveCount === 1), {
      what: 'both messages received',
    })
    // Three visibility timeouts later the first is still publishing and the second has not begun: another
    // reader of the queue must not be handed either.
    await new Promise((r) => setTimeout(r, 3000))
    const now = Date.now()
    expect(t.standIn.messages(t.queueUrl).map((m) => m.visibleAt > now)).toEqual([true, true])
    release()
    await waitFor(t.settled, { what: 'both messages deleted' })
    expect(t.events()).toHaveLength(2)
    expect(t.standIn.messages(t.queueUrl).map((m) => m.receiveCount)).toEqual([1, 1])
  })
  it('leaves a message to SQS, not to the dead letters, when nerve stops while it waits for the bus', async () => {
    const t = await start({ max_receives: 1 })
    t.standIn.putObject('acme-org-trail', `${prefix}/busy.json.gz`, logFile(stratus.slice(0, 1)))
    t.bus.before = async (topic) => {
      if (topic.name === eventsTopic.name)
        throw new NerveError('SATURATED', 'The bus is busy.', { retriable: true })
    }
    const note = JSON.parse(envelope('s3-event-notification-awsdocs-example.json'))
    note.Records[0].s3.bucket.name = 'acme-org-trail'
    note.Records[0].s3.object.key = `${prefix}/busy.json.gz`
    t.standIn.sendMessage(t.queueUrl, JSON.stringify(note))
    await waitFor(() => t.standIn.requests.some((r) => r.action === 'GetObject'), { what: 'the object read' })
    await new Promise((r) => setTimeout(r, 200))
    await t.ingest.close()
    expect(t.deadLetters()).toEqual([])
    expect(t.standIn.messages(t.queueUrl).map((m) => m.deleted)).toEqual([false])
  })
})
