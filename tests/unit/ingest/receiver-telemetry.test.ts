// The component telemetry spec: each receiver counts received, sent, discarded (with reason) and errors
// (with error_code and stage), per batch, with bounded labels.
import { describe, expect, it } from 'vitest'
import { auth, fixture, startHarness, token } from './ingest-harness.ts'

describe('receiver telemetry', () => {
  it('counts received, sent, discarded and errors for each receiver', async () => {
    const h = await startHarness()
    const falco = [
      ...fixture('falco/falco-website.ndjson').toString().trim().split('\n').slice(0, 3),
      '{}',
    ].join('\n')
    await h.server.inject({ method: 'POST', url: '/v1/falco', payload: falco, headers: auth })
    const insights = fixture('cloudtrail/envelopes/s3-log-file-awsdocs-insights-example.json')
    await h.server.inject({ method: 'POST', url: '/v1/cloudtrail', payload: insights, headers: auth })
    const firehose = fixture('cloudtrail/envelopes/firehose-http-request-cwl-cloudtrail.json')
    await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail/firehose',
      payload: firehose,
      headers: { 'x-amz-firehose-access-key': token },
    })
    await h.server.inject({ method: 'POST', url: '/v1/falco', payload: '', headers: auth })
    const value = (name: string, labels: Record<string, string>) =>
      h.rt.metricValue(`nerve_component_${name}`, labels)
    expect(await value('received_events_total', { component: 'falco_receiver' })).toBe(4)
    expect(await value('sent_events_total', { component: 'falco_receiver' })).toBe(3)
    expect(await value('discarded_events_total', { component: 'falco_receiver', reason: 'invalid' })).toBe(1)
    expect(
      await value('errors_total', {
        component: 'falco_receiver',
        error_code: 'INPUT_INVALID',
        stage: 'validate',
      }),
    ).toBe(1)
    expect(
      await value('errors_total', {
        component: 'falco_receiver',
        error_code: 'INPUT_INVALID',
        stage: 'read',
      }),
    ).toBe(1)
    expect(await value('received_events_total', { component: 'cloudtrail_receiver' })).toBe(2)
    expect(
      await value('discarded_events_total', { component: 'cloudtrail_receiver', reason: 'insight' }),
    ).toBe(2)
    expect(await value('received_events_total', { component: 'firehose_receiver' })).toBe(4)
    expect(await value('sent_events_total', { component: 'firehose_receiver' })).toBe(3)
    const text = await h.rt.metrics.render()
    expect(text).toContain('nerve_ingest_pending_publishes 0')
  })
})
