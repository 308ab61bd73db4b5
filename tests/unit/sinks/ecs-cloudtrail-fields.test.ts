// The watched agent writes its own request parameters. Elasticsearch refuses a whole document when one
// flattened leaf, with its key path, is longer than Lucene's 32,766-byte term, or when a flattened field
// nests deeper than its depth_limit (20 by default; ingest accepts 64 levels): the CloudTrail call is then
// dead-lettered, out of Kibana. The request is a real PutUserPolicy (Panther's rule tests) with the
// reviewer's policies in it.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cloudTrailDocumentFields, flattenedDepthLimit } from '../../../sinks/ecs-cloudtrail-fields.ts'
import { awsCloudTrailFieldMappings } from '../../../sinks/elasticsearch-templates.ts'

const putUserPolicy = readFileSync(
  resolve(import.meta.dirname, '../../fixtures/cloudtrail/panther-analysis-rule-tests.ndjson'),
  'utf8',
)
  .split('\n')
  .filter((line) => line.includes('"eventName":"PutUserPolicy"'))
  .map((line) => JSON.parse(line) as Record<string, unknown>)[0] as Record<string, unknown>

const withRequest = (requestParameters: unknown) => ({ ...putUserPolicy, requestParameters })
const flattenedRequest = (record: Record<string, unknown>) => {
  const doc = cloudTrailDocumentFields(record) as {
    aws: { cloudtrail: { request_parameters?: string; flattened: { request_parameters?: unknown } } }
  }
  return {
    text: doc.aws.cloudtrail.request_parameters,
    flattened: doc.aws.cloudtrail.flattened.request_parameters,
  }
}

/** Each leaf's term as a flattened field indexes it (`key.path\0value`) and its nesting (objects count). */
function terms(value: unknown, path = '', depth = 1): { bytes: number; depth: number }[] {
  if (Array.isArray(value)) return value.flatMap((v) => terms(v, path, depth))
  if (typeof value === 'object' && value !== null)
    return Object.entries(value).flatMap(([k, v]) =>
      terms(
        v,
        path ? `${path}.${k}` : k,
        typeof v === 'object' && v !== null && !Array.isArray(v) ? depth + 1 : depth,
      ),
    )
  return [{ bytes: Buffer.byteLength(`${path}\0${String(value)}`), depth }]
}
const withinLimits = (flattened: unknown) =>
  terms(flattened).every((t) => t.bytes <= 32_766 && t.depth <= flattenedDepthLimit)

describe('aws.cloudtrail.flattened under hostile request parameters', () => {
  it('never holds a leaf longer than Lucene takes in UTF-8 bytes, though shorter in characters', () => {
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: '*',
          Resource: '*',
          Condition: { StringEquals: { 'aws:PrincipalTag/x': '€'.repeat(11_000) } },
        },
      ],
    })
    const params = { userName: 'test-user', policyName: 'IMMENSE', policyDocument: policy }
    expect(policy.length).toBeLessThan(32_766)
    const { text, flattened } = flattenedRequest(withRequest(params))
    expect(text).toContain('policyName=IMMENSE')
    expect(flattened === undefined || withinLimits(flattened)).toBe(true)
    // The real request, as the integration keeps it: whole.
    const real = flattenedRequest(putUserPolicy)
    expect(real.flattened).toEqual(putUserPolicy.requestParameters)
  })

  it('keeps a request nested 31 deep within the depth limit, its deeper levels as their text', () => {
    let deep: unknown = { v: 'x' }
    for (let i = 0; i < 30; i++) deep = { n: deep }
    const { flattened } = flattenedRequest(withRequest({ name: 'DEEP', rules: [deep] }))
    expect(flattened).toMatchObject({ name: 'DEEP' })
    expect(withinLimits(flattened)).toBe(true)
    expect(JSON.stringify(flattened)).toContain('{v=x}')
  })

  it("is mapped with an ignore_above that keeps any leaf's term under Lucene's limit, and the depth it is cut to", () => {
    for (const name of [
      'request_parameters',
      'response_elements',
      'additional_eventdata',
      'service_event_details',
    ]) {
      const mapping = awsCloudTrailFieldMappings[`aws.cloudtrail.flattened.${name}`]
      expect(mapping).toMatchObject({ type: 'flattened', depth_limit: flattenedDepthLimit })
      // ignore_above counts UTF-16 units; one is at most 3 UTF-8 bytes; a quarter is left for the key path.
      expect((mapping?.ignore_above as number) * 3).toBeLessThanOrEqual(32_766 * 0.75)
    }
  })
})
