// `nerve setup elasticsearch` against a loopback Elasticsearch: what it PUTs, that the pieces fit together
// (index templates → component templates → ILM policy), that running it twice changes nothing, and that
// the data streams nerve's templates already made get an upgrade's new fields in their write index.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isNerveError } from '../../../runtime/errors.ts'
import type { ElasticsearchConfig } from '../../../schemas/types.ts'
import { setupElasticsearch } from '../../../sinks/elasticsearch-setup.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import {
  type FakeElasticsearch,
  type FakeRequest,
  type FakeResponse,
  startFakeElasticsearch,
} from './elasticsearch-fake-server.ts'

let es: FakeElasticsearch
beforeEach(async () => {
  es = await startFakeElasticsearch()
})
afterEach(() => es.close())

const config = (): ElasticsearchConfig => ({
  url: es.url,
  api_key: 'a2V5OnNlY3JldA==',
  namespace: 'default',
  index_events: true,
  max_retries: 3,
})

type IndexTemplateBody = {
  index_patterns: string[]
  data_stream: object
  priority: number
  composed_of: string[]
  version: number
}
type ComponentBody = { template: { settings?: Record<string, unknown>; mappings?: Record<string, unknown> } }

describe('setupElasticsearch', () => {
  it('installs the ILM policy, component templates and one data stream template per stream', async () => {
    const { log } = createTestRuntime()
    const { applied } = await setupElasticsearch(config(), { log })
    expect(applied).toEqual([
      '_ilm/policy/nerve',
      '_component_template/nerve-settings',
      '_component_template/nerve-ecs-9.4.0-mappings',
      '_component_template/nerve-fields-mappings',
      '_component_template/nerve-aws-cloudtrail-mappings',
      '_index_template/nerve-events',
      '_index_template/nerve-correlations',
      '_index_template/nerve-revokes',
      '_index_template/nerve-aws-cloudtrail',
    ])
    // No data stream exists yet: nothing else to update.
    const puts = es.requests.filter((r) => r.method === 'PUT')
    expect(puts.map((r) => r.path)).toEqual(applied.map((a) => `/${a}`))
    expect(es.requests.every((r) => r.headers.authorization === 'ApiKey a2V5OnNlY3JldA==')).toBe(true)

    const templates = ['events', 'correlations', 'revokes'].map(
      (name) => es.objects.get(`/_index_template/nerve-${name}`) as IndexTemplateBody,
    )
    expect(templates.map((t) => t.index_patterns)).toEqual([
      ['logs-nerve.events-*'],
      ['logs-nerve.correlations-*'],
      ['logs-nerve.revokes-*'],
    ])
    for (const template of templates) {
      expect(template).toMatchObject({ data_stream: {}, priority: 501, version: 5 })
      for (const name of template.composed_of)
        expect(es.objects.has(`/_component_template/${name}`)).toBe(true)
    }
    // CloudTrail goes to Elastic's AWS integration's stream; nerve's template yields to Fleet's (200).
    const cloudtrail = es.objects.get('/_index_template/nerve-aws-cloudtrail') as IndexTemplateBody
    expect(cloudtrail).toMatchObject({ index_patterns: ['logs-aws.cloudtrail-*'], priority: 150 })
    expect(cloudtrail.composed_of).toContain('nerve-aws-cloudtrail-mappings')
  })

  it('maps with dynamic false, output_fields as flattened, and points the settings at the policy', async () => {
    await setupElasticsearch(config(), { log: createTestRuntime().log })
    const settings = es.objects.get('/_component_template/nerve-settings') as ComponentBody
    expect(settings.template).toMatchObject({
      settings: { index: { lifecycle: { name: 'nerve' }, mapping: { ignore_malformed: true } } },
      mappings: { dynamic: false, date_detection: false },
    })
    expect(es.objects.has('/_ilm/policy/nerve')).toBe(true)
    expect(es.objects.get('/_ilm/policy/nerve')).toMatchObject({
      policy: { phases: { hot: { actions: { rollover: { max_primary_shard_size: '50gb' } } } } },
    })
    const fields = es.objects.get('/_component_template/nerve-fields-mappings') as ComponentBody
    expect(fields.template.mappings).toMatchObject({
      properties: {
        nerve: {
          properties: {
            falco: { properties: { output_fields: { type: 'flattened' } } },
            identity: { type: 'flattened' },
          },
        },
      },
    })
    const ecs = es.objects.get('/_component_template/nerve-ecs-9.4.0-mappings') as ComponentBody
    expect(ecs.template.mappings).toMatchObject({
      properties: {
        '@timestamp': { type: 'date' },
        event: { properties: { category: { type: 'keyword' }, risk_score: { type: 'float' } } },
        source: { properties: { ip: { type: 'ip' } } },
        data_stream: { properties: { dataset: { type: 'constant_keyword' } } },
      },
    })
  })

  it('is idempotent: a second run sends the same PUTs and leaves the same state', async () => {
    const { log } = createTestRuntime()
    await setupElasticsearch(config(), { log })
    const first = structuredClone(Object.fromEntries(es.objects))
    const firstRequests = es.requests.map((r) => [r.method, r.path, r.body])
    es.requests.length = 0
    await setupElasticsearch(config(), { log })
    expect(Object.fromEntries(es.objects)).toEqual(first)
    expect(es.requests.map((r) => [r.method, r.path, r.body])).toEqual(firstRequests)
  })

  it("stops at the first refusal with Elasticsearch's reason", async () => {
    es.script.push((req) =>
      req.path === '/_component_template/nerve-fields-mappings'
        ? { status: 400, body: { error: { type: 'mapper_parsing_exception', reason: 'unknown parameter' } } }
        : undefined,
    )
    const error = await setupElasticsearch(config(), { log: createTestRuntime().log }).catch(
      (e: unknown) => e,
    )
    expect(isNerveError(error) && error.code).toBe('SINK_REJECTED')
    expect(String((error as Error).message)).toBe(
      'PUT _component_template/nerve-fields-mappings failed (HTTP 400): mapper_parsing_exception: unknown parameter',
    )
    expect(es.requests.some((r) => r.path.startsWith('/_index_template'))).toBe(false)
  })

  it('says so when Elasticsearch cannot be reached', async () => {
    const url = es.url
    await es.close()
    const error = await setupElasticsearch({ ...config(), url }, { log: createTestRuntime().log }).catch(
      (e: unknown) => e,
    )
    expect(isNerveError(error) && [error.code, error.retriable]).toEqual(['SINK_UNAVAILABLE', true])
    es = await startFakeElasticsearch()
  })

  describe('after an upgrade, with data streams already there', () => {
    // As GET _data_stream/<pattern> answers: nerve's streams, and CloudTrail's under Fleet's AWS template.
    const streams = [
      { name: 'logs-nerve.events-default', template: 'nerve-events' },
      { name: 'logs-nerve.correlations-default', template: 'nerve-correlations' },
      { name: 'logs-nerve.correlations-staging', template: 'nerve-correlations' },
      { name: 'logs-aws.cloudtrail-default', template: 'logs-aws.cloudtrail' },
    ]
    const listStreams = (req: FakeRequest): FakeResponse | undefined => {
      if (req.method !== 'GET' || !req.path.startsWith('/_data_stream/')) return undefined
      const patterns = decodeURIComponent(req.path.slice('/_data_stream/'.length).split('?')[0] as string)
      const matches = (name: string) =>
        patterns
          .split(',')
          .some((p) => new RegExp(`^${p.replaceAll('.', '\\.').replaceAll('*', '.*')}$`).test(name))
      const found = streams.filter((s) => matches(s.name))
      return { status: 200, body: { data_streams: found.map((s) => ({ ...s, replicated: false })) } }
    }
    type MappingBody = { dynamic: boolean; properties: Record<string, ComponentBody['template']['mappings']> }

    it("adds the templates' new fields to the write index of nerve's data streams at once", async () => {
      es.script.push(listStreams)
      const { applied } = await setupElasticsearch(config(), { log: createTestRuntime().log })
      expect(applied.slice(9)).toEqual([
        'logs-nerve.events-default/_mapping',
        'logs-nerve.correlations-default/_mapping',
        'logs-nerve.correlations-staging/_mapping',
      ])
      const mapping = es.objects.get(
        '/logs-nerve.correlations-default/_mapping?write_index_only=true',
      ) as MappingBody
      // The pivot field of correlations, searchable now rather than after the next rollover (30 days).
      expect(mapping).toMatchObject({
        dynamic: false,
        properties: {
          aws: {
            properties: {
              cloudtrail: { properties: { user_identity: { properties: { arn: { type: 'keyword' } } } } },
            },
          },
          user: { properties: { name: { type: 'keyword' } } },
        },
      })
      // The same mappings the template gives a new backing index (its component templates, composed), but
      // for the data_stream.* constant_keyword fields, which the write index holds with their values.
      const ecsComponent = es.objects.get('/_component_template/nerve-ecs-9.4.0-mappings') as ComponentBody
      const { data_stream, ...ecs } = (ecsComponent.template.mappings?.properties ?? {}) as Record<
        string,
        unknown
      >
      expect(data_stream).toBeDefined()
      expect(mapping.properties).not.toHaveProperty('data_stream')
      expect(mapping.properties).toMatchObject(ecs)
      for (const name of ['nerve-fields-mappings', 'nerve-aws-cloudtrail-mappings']) {
        const part = (es.objects.get(`/_component_template/${name}`) as ComponentBody).template.mappings
        expect(mapping).toMatchObject(part as object)
      }
      // Fleet's template shapes logs-aws.cloudtrail-default: nerve leaves that stream alone.
      expect(es.requests.some((r) => r.path.startsWith('/logs-aws.cloudtrail-'))).toBe(false)
      expect(es.requests.some((r) => r.method === 'POST')).toBe(false)
    })

    it('stops with one error naming the stream and the field when the stream maps it otherwise', async () => {
      es.script.push(listStreams, (req) =>
        req.method === 'PUT' && req.path.startsWith('/logs-nerve.correlations-default/_mapping')
          ? {
              status: 400,
              body: {
                error: {
                  type: 'illegal_argument_exception',
                  reason:
                    'mapper [aws.cloudtrail.user_identity.arn] cannot be changed from type [text] to [keyword]',
                },
              },
            }
          : undefined,
      )
      const error = await setupElasticsearch(config(), { log: createTestRuntime().log }).catch(
        (e: unknown) => e,
      )
      expect(isNerveError(error) && [error.code, error.retriable]).toEqual(['SINK_REJECTED', false])
      expect(String((error as Error).message)).toBe(
        'PUT logs-nerve.correlations-default/_mapping failed (HTTP 400): illegal_argument_exception: ' +
          'mapper [aws.cloudtrail.user_identity.arn] cannot be changed from type [text] to [keyword]; ' +
          'logs-nerve.correlations-default maps that field otherwise: its backing indices from the next ' +
          "rollover on take the template's mapping (POST logs-nerve.correlations-default/_rollover to roll over now)",
      )
      // The templates are in place for the next backing index all the same.
      expect(es.objects.has('/_index_template/nerve-correlations')).toBe(true)
    })
  })
})
