// Firehose redeliveries: a delivery is dropped as a redelivery only when the same sender (the credentials
// it showed) sent the same request id before and that delivery was accepted whole. Whoever else holds a
// token that opens the route (the shared ingest token) cannot pre-post a request id to hide a later real
// delivery with it.
import { describe, expect, it } from 'vitest'
import { eventsTopic } from '../../../bus/topics.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { auth, fixture, startHarness } from './ingest-harness.ts'

const firehoseBody = fixture('cloudtrail/envelopes/firehose-http-request-cwl-cloudtrail.json').toString()
const firehoseId = JSON.parse(firehoseBody).requestId as string
const firehoseToken = 'nrv_firehose-stream-access-key-0123'
const fromFirehose = { 'x-amz-firehose-access-key': firehoseToken, 'x-amz-firehose-request-id': firehoseId }
const url = '/v1/cloudtrail/firehose'

/** A delivery with the real one's request id whose one record is harmless (it is dead-lettered). */
const decoy = JSON.stringify({
  requestId: firehoseId,
  timestamp: 1_750_000_000_000,
  records: [{ data: Buffer.from('{"note":"nothing to see"}').toString('base64') }],
})

describe('Firehose redeliveries', () => {
  it("does not drop a real delivery whose request id another token's holder posted first", async () => {
    const h = await startHarness({ tokens: { firehose: firehoseToken } })
    const early = await h.server.inject({
      method: 'POST',
      url,
      payload: decoy,
      headers: { ...auth, 'x-amz-firehose-request-id': firehoseId },
    })
    expect(early.statusCode).toBe(200)
    const real = await h.server.inject({ method: 'POST', url, payload: firehoseBody, headers: fromFirehose })
    expect(real.statusCode).toBe(200)
    expect(h.bus.records(eventsTopic)).toHaveLength(3)
    expect(await h.rt.metricValue('nerve_ingest_firehose_redeliveries_total')).toBe(0)
    // Firehose's own retry of it is still a redelivery.
    const retry = await h.server.inject({ method: 'POST', url, payload: firehoseBody, headers: fromFirehose })
    expect(retry.statusCode).toBe(200)
    expect(h.bus.records(eventsTopic)).toHaveLength(3)
    expect(await h.rt.metricValue('nerve_ingest_firehose_redeliveries_total')).toBe(1)
  })

  it('publishes a retry that arrived while the first attempt was publishing, when that attempt failed', async () => {
    const h = await startHarness({ tokens: { firehose: firehoseToken }, maxPending: 1, spoolBytes: 0 })
    let fail: (err: Error) => void = () => {}
    h.bus.before = (topic) =>
      topic === eventsTopic ? new Promise<void>((_, reject) => (fail = reject)) : Promise.resolve()
    const first = h.server.inject({ method: 'POST', url, payload: firehoseBody, headers: fromFirehose })
    await waitFor(() => h.ingest.readiness.ingest?.().ok === false, { what: 'the first delivery publishing' })
    const retry = h.server.inject({ method: 'POST', url, payload: firehoseBody, headers: fromFirehose })
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r))
    h.bus.before = undefined
    fail(new Error('down'))
    expect((await first).statusCode).toBe(503)
    expect((await retry).statusCode).toBe(200)
    expect(h.bus.records(eventsTopic)).toHaveLength(3)
    expect(await h.rt.metricValue('nerve_ingest_firehose_redeliveries_total')).toBe(0)
  })
})
