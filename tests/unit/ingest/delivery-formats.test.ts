// What AWS actually delivers: EventBridge's every "… via CloudTrail" detail type (Network Activity events
// and both spellings of Console Sign In among them), a Firehose request as large as Firehose sends for an
// HTTP endpoint (over the general body limit), and a Firehose 401 that names the header Firehose uses.
import { describe, expect, it } from 'vitest'
import { eventsTopic } from '../../../bus/topics.ts'
import { auth, fixture, startHarness } from './ingest-harness.ts'

const eventBridge = JSON.parse(
  fixture('cloudtrail/envelopes/eventbridge-aws-api-call-via-cloudtrail-awsdocs.json').toString(),
)
const firehose = JSON.parse(
  fixture('cloudtrail/envelopes/firehose-http-request-cwl-cloudtrail.json').toString(),
)

describe('EventBridge detail types', () => {
  it.each([
    'AWS API Call via CloudTrail',
    'AWS Console Sign In via CloudTrail',
    'AWS Console Signin via CloudTrail',
    'AWS Console Action via CloudTrail',
    'AWS Service Event via CloudTrail',
    'AWS Network Activity Event via CloudTrail',
  ])('accepts "%s"', async (detailType) => {
    const h = await startHarness()
    const payload = { ...eventBridge, 'detail-type': detailType }
    const res = await h.server.inject({ method: 'POST', url: '/v1/cloudtrail', payload, headers: auth })
    expect(res.statusCode).toBe(202)
    expect(res.json()).toMatchObject({ accepted: 1 })
    expect(h.bus.records(eventsTopic)).toHaveLength(1)
  })

  it('still refuses an EventBridge event that does not come from CloudTrail', async () => {
    const h = await startHarness()
    const payload = { ...eventBridge, 'detail-type': 'EC2 Instance State-change Notification' }
    const res = await h.server.inject({ method: 'POST', url: '/v1/cloudtrail', payload, headers: auth })
    expect(res.statusCode).toBe(400)
    expect(JSON.stringify(res.json())).toContain('detail-type')
  })
})

describe('Firehose HTTP endpoint', () => {
  const headers = {
    'content-type': 'application/json',
    'x-amz-firehose-protocol-version': '1.0',
    'x-amz-firehose-request-id': firehose.requestId,
  }

  it('takes a request over the general body limit, up to what Firehose sends', async () => {
    const h = await startHarness({ http: { body_limit_bytes: 1024 * 1024 } })
    const records: { data: string }[] = []
    let bytes = 0
    while (bytes < 3 * 1024 * 1024) {
      for (const r of firehose.records as { data: string }[]) {
        records.push(r)
        bytes += r.data.length
      }
    }
    const payload = JSON.stringify({ ...firehose, records })
    expect(payload.length).toBeGreaterThan(h.config.http.body_limit_bytes)
    const res = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail/firehose',
      payload,
      headers: { ...headers, 'x-amz-firehose-access-key': auth.authorization.slice(7) },
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ requestId: firehose.requestId })
    // The other routes keep the general limit.
    const other = await h.server.inject({ method: 'POST', url: '/v1/cloudtrail', payload, headers: auth })
    expect(other.statusCode).toBe(413)
    expect(h.config.http.firehose_body_limit_bytes).toBeGreaterThanOrEqual(64 * 1024 * 1024)
  })

  it('answers a wrong access key with a 401 Firehose can show, naming X-Amz-Firehose-Access-Key', async () => {
    const h = await startHarness()
    const res = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail/firehose',
      payload: JSON.stringify(firehose),
      headers: { ...headers, 'x-amz-firehose-access-key': 'not-the-token' },
    })
    expect(res.statusCode).toBe(401)
    const body = res.json()
    expect(body.requestId).toBe(firehose.requestId)
    expect(body.errorMessage).toContain('X-Amz-Firehose-Access-Key')
    expect(h.bus.records(eventsTopic)).toHaveLength(0)
  })
})
