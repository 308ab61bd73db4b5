import { describe, expect, it } from 'vitest'
import { deadLetterTopic, eventsTopic } from '../../../bus/topics.ts'
import { validateNormalizedEvent } from '../../../schemas/input-validators.ts'
import { auth, fixture, startHarness, token } from './ingest-harness.ts'

type Expect = {
  status: number
  accepted: number
  rejected?: number
  skipped?: Record<string, number>
  internal?: number
}

const falcoFiles: [string, Expect][] = [
  ['falco/falco-website.ndjson', { status: 202, accepted: 20, internal: 5 }],
  ['falco/falco.ndjson', { status: 202, accepted: 8 }],
  ['falco/falcosecurity-plugins.ndjson', { status: 202, accepted: 5 }],
  // Line 2 is Falcosidekick's test event (rule "Test rule"): accepted and counted as internal.
  ['falco/falcosidekick.ndjson', { status: 202, accepted: 2, internal: 1 }],
  // A typo'd time and a gRPC rendering are rejected; the gRPC-Python one (offset time, lower-case priority) is valid.
  ['falco/falco-website.variants.ndjson', { status: 400, accepted: 1, rejected: 2 }],
  // Hand-written Talon payloads use "Rule": JSON keys are case-sensitive, Falco never writes it.
  ['falco/falco-talon.ndjson', { status: 400, accepted: 0, rejected: 6 }],
]

const cloudTrailFiles: [string, Expect][] = [
  ['cloudtrail/stratus-red-team-detonation-logs.ndjson', { status: 202, accepted: 310 }],
  ['cloudtrail/panther-analysis-rule-tests.ndjson', { status: 202, accepted: 77 }],
  ['cloudtrail/aws-samples-eks-pod-identity.ndjson', { status: 202, accepted: 5 }],
  ['cloudtrail/awsdocs-marketplace-eks-irsa-examples.ndjson', { status: 202, accepted: 4 }],
  ['cloudtrail/awsdocs-examples.ndjson', { status: 202, accepted: 24, skipped: { insight: 2 } }],
  ['cloudtrail/aws-iam-docs-current-oidc-example.ndjson', { status: 202, accepted: 1 }],
  ['cloudtrail/envelopes/s3-log-file-awsdocs-example.json', { status: 202, accepted: 1 }],
  [
    'cloudtrail/envelopes/s3-log-file-awsdocs-insights-example.json',
    { status: 202, accepted: 0, skipped: { insight: 2 } },
  ],
  [
    'cloudtrail/envelopes/s3-digest-file-awsdocs-example.json',
    { status: 202, accepted: 0, skipped: { digest: 1 } },
  ],
  ['cloudtrail/envelopes/eventbridge-aws-api-call-via-cloudtrail-awsdocs.json', { status: 202, accepted: 1 }],
  [
    'cloudtrail/envelopes/s3-event-notification-awsdocs-example.json',
    { status: 202, accepted: 0, skipped: { file_notification: 1 } },
  ],
  [
    'cloudtrail/envelopes/s3-event-notification-testevent-awsdocs.json',
    { status: 202, accepted: 0, skipped: { file_notification: 1 } },
  ],
  [
    'cloudtrail/envelopes/sns-message-cloudtrail-awsdocs.json',
    { status: 202, accepted: 0, skipped: { file_notification: 1 } },
  ],
  [
    'cloudtrail/envelopes/sqs-body-sns-cloudtrail-notification.json',
    { status: 202, accepted: 0, skipped: { file_notification: 1 } },
  ],
  // The AWS doc example's log messages are truncated records: each is rejected as not JSON.
  ['cloudtrail/envelopes/cwl-subscription-decoded-awsdocs.json', { status: 400, accepted: 0, rejected: 3 }],
]

async function post(url: string, payload: Buffer | string, headers: Record<string, string> = {}) {
  const h = await startHarness()
  const res = await h.server.inject({ method: 'POST', url, payload, headers: { ...auth, ...headers } })
  return { h, res, body: res.json() }
}

function expectAnswer(body: Record<string, unknown>, want: Expect) {
  expect(body.accepted).toBe(want.accepted)
  if (want.rejected !== undefined) expect(body.rejected).toBe(want.rejected)
  if (want.skipped) expect(body.skipped).toEqual(want.skipped)
  if (want.internal) expect(body.internal).toBe(want.internal)
}

describe('every sample through its route', () => {
  it.each(falcoFiles)('POST /v1/falco %s', async (file, want) => {
    const { h, res, body } = await post('/v1/falco', fixture(file))
    expect(res.statusCode).toBe(want.status)
    expectAnswer(body, want)
    const events = h.bus.records(eventsTopic)
    expect(events).toHaveLength(want.accepted)
    for (const { key, value } of events) {
      expect(validateNormalizedEvent(value), JSON.stringify(validateNormalizedEvent.errors)).toBe(true)
      expect(key).toBe(value.agent.id)
    }
    expect(h.bus.records(deadLetterTopic)).toHaveLength(want.rejected ?? 0)
  })

  it.each(cloudTrailFiles)('POST /v1/cloudtrail %s', async (file, want) => {
    const { h, res, body } = await post('/v1/cloudtrail', fixture(file))
    expect(res.statusCode).toBe(want.status)
    expectAnswer(body, want)
    const events = h.bus.records(eventsTopic)
    expect(events).toHaveLength(want.accepted)
    for (const { value } of events) expect(validateNormalizedEvent(value)).toBe(true)
  })

  it('POST /v1/cloudtrail a gzipped S3 log file, with and without Content-Encoding', async () => {
    const gz = fixture(
      'cloudtrail/envelopes/123456789012_CloudTrail_us-east-2_20160714T1920Z_EXAMPLEa1b2c3d4e.json.gz',
    )
    for (const headers of [{ 'content-encoding': 'gzip' }, {}] as Record<string, string>[]) {
      const { res, body } = await post('/v1/cloudtrail', gz, headers)
      expect(res.statusCode).toBe(202)
      expect(body).toEqual({ accepted: 1 })
    }
  })

  it('POST /v1/cloudtrail/firehose the Firehose request: 3 records, the control message skipped', async () => {
    const payload = fixture('cloudtrail/envelopes/firehose-http-request-cwl-cloudtrail.json')
    const requestId = JSON.parse(payload.toString()).requestId
    const { h, res, body } = await post('/v1/cloudtrail/firehose', payload, {
      'x-amz-firehose-access-key': token,
      'x-amz-firehose-request-id': requestId,
      authorization: '',
    })
    expect(res.statusCode).toBe(200)
    const success = JSON.parse(fixture('cloudtrail/envelopes/firehose-http-response-success.json').toString())
    expect(Object.keys(body).sort()).toEqual(Object.keys(success).sort())
    expect(body).toEqual({ requestId, timestamp: 1_750_000_000_000 })
    const events = h.bus.records(eventsTopic)
    expect(events).toHaveLength(3)
    expect(events.every((e) => e.value.via === 'firehose')).toBe(true)
    expect(
      await h.rt.metricValue('nerve_component_discarded_events_total', { reason: 'control_message' }),
    ).toBe(1)
  })
})

// Two sample files stay out of the project for their licences (tests/fixtures/*/ATTRIBUTION.md): Elastic's
// Falco and CloudTrail pipeline tests (Elastic License 2.0) and a failed IRSA call (no licence). Their shapes
// that no fixture here has are rebuilt from fixtures that are in the project.
describe('shapes of the samples kept out of the project, rebuilt from fixtures', () => {
  const firstLine = (path: string) => JSON.parse(fixture(path).toString().split('\n')[0] as string)

  it('accepts a Falco alert in ISO 8601 time mode, delivered by Falcosidekick, with nulls, booleans and arrays', async () => {
    const alert = firstLine('falco/falcosidekick.ndjson')
    alert.uuid = '7466e462-ddde-434d-8dee-390ca5656f83'
    alert.source = 'syscall'
    alert.tags = ['T1555', 'container', '']
    alert.output_fields = {
      ...alert.output_fields,
      'evt.time.iso8601': alert.output_fields['evt.time'],
      'proc.pname': null,
      'evt.is_open_write': true,
      'container.image.digest': ['sha256:0123456789abcdef'],
    }
    delete alert.output_fields['evt.time']
    const { h, res, body } = await post('/v1/falco', JSON.stringify(alert))
    expect(res.statusCode).toBe(202)
    expect(body.accepted).toBe(1)
    const [event] = h.bus.records(eventsTopic)
    expect(validateNormalizedEvent(event?.value)).toBe(true)
  })

  it('accepts a failed IRSA AssumeRoleWithWebIdentity by a Kubernetes service account', async () => {
    const record = firstLine('cloudtrail/aws-iam-docs-current-oidc-example.ndjson')
    record.userIdentity.userName = 'system:serviceaccount:argo:awf-aws-executor-plugin'
    record.requestParameters.roleSessionName = '1651577386013339000'
    record.errorCode = 'AccessDenied'
    record.errorMessage = 'Not authorized to perform sts:AssumeRoleWithWebIdentity'
    record.responseElements = null
    const { h, res, body } = await post('/v1/cloudtrail', JSON.stringify(record))
    expect(res.statusCode).toBe(202)
    expect(body.accepted).toBe(1)
    const [event] = h.bus.records(eventsTopic)
    expect(validateNormalizedEvent(event?.value)).toBe(true)
  })
})

describe('NDJSON with a broken first line', () => {
  it('accepts every parseable Falco alert and dead-letters only the broken line', async () => {
    const good = fixture('falco/falcosecurity-plugins.ndjson')
      .toString()
      .split('\n')
      .filter(Boolean)
      .slice(0, 3)
    const body = `${(good[0] as string).slice(0, 40)}\n${good.join('\n')}\n`
    const h = await startHarness()
    const res = await h.server.inject({ method: 'POST', url: '/v1/falco', payload: body, headers: auth })
    expect(res.json()).toMatchObject({ accepted: 3, rejected: 1 })
    expect(h.bus.records(eventsTopic)).toHaveLength(3)
    expect(h.bus.records(deadLetterTopic)).toHaveLength(1)
  })
})
