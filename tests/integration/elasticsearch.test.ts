// Against a real Elasticsearch (NERVE_ELASTICSEARCH_URL, with credentials in the URL or in the NERVE_CONFIG
// file): `nerve setup elasticsearch` twice, a batch indexed and indexed again, searched back through the
// mappings the templates made. Each run writes to its own namespace and deletes its data streams after.
import type { Client } from '@elastic/elasticsearch'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../runtime/load-config.ts'
import type { ElasticsearchConfig } from '../../schemas/types.ts'
import { createElasticsearchClient } from '../../sinks/elasticsearch-client.ts'
import { dataStreamName, indexedTopics } from '../../sinks/elasticsearch-data-streams.ts'
import { createElasticsearchIndexer, type IndexItem } from '../../sinks/elasticsearch-indexer.ts'
import { setupElasticsearch } from '../../sinks/elasticsearch-setup.ts'
import { randomName } from '../helpers/random-names.ts'
import { createTestRuntime } from '../helpers/test-runtime.ts'
import { correlation, events, revokeOutcomes, shellInContainer } from '../unit/sinks/ecs-sample-events.ts'

const url = process.env.NERVE_ELASTICSEARCH_URL
if (!url) console.log('Skipping the Elasticsearch integration test: NERVE_ELASTICSEARCH_URL is not set.')

describe.skipIf(!url)('Elasticsearch sink against a real cluster', () => {
  let config: ElasticsearchConfig
  let client: Client
  const namespace = randomName('it').replace('-', '_')
  const streams = indexedTopics.map((t) => dataStreamName(t, namespace))
  const batch: IndexItem[] = [
    ...events.map((value): IndexItem => ({ topic: 'events', value })),
    { topic: 'correlations', value: correlation },
    ...revokeOutcomes.map((value): IndexItem => ({ topic: 'revoke_outcomes', value })),
  ]

  beforeAll(() => {
    config = { ...loadConfig({ env: process.env }).sinks.elasticsearch, namespace }
    client = createElasticsearchClient(config)
  })
  afterAll(async () => {
    await client?.indices.deleteDataStream({ name: streams.join(',') }, { ignore: [404] })
    await client?.close()
  })

  it('installs the templates twice without error', async () => {
    const { log } = createTestRuntime()
    const first = await setupElasticsearch(config, { log })
    const second = await setupElasticsearch(config, { log })
    expect(second.applied).toEqual(first.applied)
    const { index_templates } = await client.indices.getIndexTemplate({ name: 'nerve-correlations' })
    expect(index_templates[0]?.index_template.data_stream).toBeDefined()
  })

  it('indexes a batch, counts the replay as already indexed, and searches it back', async () => {
    const rt = createTestRuntime()
    const indexer = createElasticsearchIndexer(config, { log: rt.log, metrics: rt.metrics })
    expect(await indexer.writeBatch(batch)).toEqual({ failed: [] })
    expect(await indexer.writeBatch(batch)).toEqual({ failed: [] })
    expect(await rt.metricValue('nerve_elasticsearch_documents_total', { result: 'duplicate' })).toBe(
      batch.length,
    )
    await indexer.close()
    await client.indices.refresh({ index: streams.join(',') })

    const counts = await Promise.all(streams.map((index) => client.count({ index })))
    expect(counts.map((c) => c.count)).toEqual([events.length, 1, revokeOutcomes.length])

    const alerts = await client.search({
      index: streams[1],
      query: {
        bool: {
          filter: [{ term: { 'event.kind': 'alert' } }, { range: { 'event.risk_score': { gte: 90 } } }],
        },
      },
    })
    expect(alerts.hits.hits.map((h) => h._id)).toEqual([correlation.id])

    const byOutputField = await client.search({
      index: streams[0],
      query: { term: { 'nerve.falco.output_fields.container.image.repository': 'docker.io/library/alpine' } },
    })
    expect(byOutputField.hits.hits.map((h) => h._id)).toEqual([shellInContainer.id])

    const sent = await client.search({
      index: streams[2],
      query: { term: { 'nerve.revoke.status': 'sent' } },
    })
    expect(sent.hits.hits).toHaveLength(1)

    const mapping = await client.indices.getMapping({ index: streams[0] })
    const properties = Object.values(mapping)[0]?.mappings.properties as Record<
      string,
      { properties?: object }
    >
    expect(properties.nerve?.properties).toMatchObject({
      falco: { properties: { output_fields: { type: 'flattened' } } },
    })
  })
})
