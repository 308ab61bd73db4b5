// An S3 endpoint that stalls (answers a GetObject with its headers and part of the body and then nothing,
// or never answers at all) holds one object for at most ingest.s3_sqs.object_timeout: its message is left
// for SQS to redeliver, counted and named in one warning, and the queue's polling goes on meanwhile.
import { describe, expect, it } from 'vitest'
import { waitFor } from '../../helpers/wait-for.ts'
import { logFile, notificationOf, prefix, startReader, stratus } from './s3-sqs-harness.ts'

describe('S3 + SQS reader against a stalled S3 endpoint', () => {
  it('gives up on an object that stalls mid-body or never answers, and reads the next message', async () => {
    // One message at a time: without a bound, the first stalled object would hold the queue for good.
    const t = await startReader({ concurrency: 1, object_timeout: 1000, visibility_timeout: 600_000 })
    const midBody = `${prefix}/123456789012_CloudTrail_us-east-2_20240730T2130Z_midbody.json.gz`
    const silent = `${prefix}/123456789012_CloudTrail_us-east-2_20240730T2135Z_silent.json.gz`
    const good = `${prefix}/123456789012_CloudTrail_us-east-2_20240730T2140Z_good.json.gz`
    const stalled = logFile(stratus.slice(0, 20))
    t.standIn.putObject('acme-org-trail', midBody, stalled, { stall: Math.floor(stalled.length / 2) })
    t.standIn.putObject('acme-org-trail', silent, logFile(stratus.slice(20, 25)), { stall: 'request' })
    t.standIn.putObject('acme-org-trail', good, logFile(stratus.slice(25, 30)))
    t.standIn.sendMessage(t.queueUrl, notificationOf('acme-org-trail', midBody))
    t.standIn.sendMessage(t.queueUrl, notificationOf('acme-org-trail', silent))
    t.standIn.sendMessage(t.queueUrl, notificationOf('acme-org-trail', good))

    await waitFor(
      async () => (await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'deleted' })) === 1,
      { what: 'the message behind the stalled ones read and deleted', timeoutMs: 15_000 },
    )
    expect(t.events().map((e) => e.id)).toEqual(stratus.slice(25, 30).map((r) => r.eventID))
    const [first, second, third] = t.standIn.messages(t.queueUrl)
    expect([first?.deleted, second?.deleted, third?.deleted]).toEqual([false, false, true])
    expect(t.deadLetters()).toEqual([])
    expect(await t.rt.metricValue('nerve_s3_sqs_objects_total', { outcome: 'timed_out' })).toBe(2)
    expect(await t.rt.metricValue('nerve_s3_sqs_messages_total', { outcome: 'retried' })).toBe(2)
    const warnings = t.rt.logs.filter((l) => l.level === 'warn' && l.component === 's3_sqs_reader')
    for (const key of [midBody, silent]) {
      const named = warnings.filter((l) => l.key === key)
      expect(named).toHaveLength(1)
      expect(named[0]).toMatchObject({ bucket: 'acme-org-trail', error_code: 'SINK_UNAVAILABLE' })
      expect(named[0]?.reason).toMatch(/not read within 1000 ms/)
    }
  })
  it('gives back the connection of every object refused for its size, so the objects after it are read', async () => {
    // An object over max_object_bytes by its Content-Length is refused before its body is read; the body
    // must still be let go, or each such object keeps one of the client's 50 sockets for good.
    const t = await startReader({ concurrency: 1, object_timeout: 2000, max_object_bytes: 4000 })
    const large = logFile(stratus.slice(0, 20))
    const keys = Array.from(
      { length: 60 },
      (_, i) =>
        `${prefix}/123456789012_CloudTrail_us-east-2_20240730T21${String(i).padStart(2, '0')}Z_large.json.gz`,
    )
    for (const key of keys) t.standIn.putObject('acme-org-trail', key, large, { stall: 16 })
    const good = `${prefix}/123456789012_CloudTrail_us-east-2_20240730T2200Z_good.json.gz`
    const small = logFile(stratus.slice(25, 26))
    expect([small.length < 4000, large.length > 4000]).toEqual([true, true])
    t.standIn.putObject('acme-org-trail', good, small)
    for (const key of keys) t.standIn.sendMessage(t.queueUrl, notificationOf('acme-org-trail', key))
    t.standIn.sendMessage(t.queueUrl, notificationOf('acme-org-trail', good))

    await waitFor(() => t.events().length === 1, {
      what: 'the object behind 60 refused ones read',
      timeoutMs: 15_000,
    })
    expect(t.events().map((e) => e.id)).toEqual([stratus[25]?.eventID])
    expect(await t.rt.metricValue('nerve_s3_sqs_objects_total', { outcome: 'timed_out' })).toBe(0)
  })
})
