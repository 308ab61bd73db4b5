// `nerve setup elasticsearch`: installs the ILM policy, the component templates and the composable index
// templates of sinks/elasticsearch-templates.ts. Every call is a PUT of the whole object, so running it
// twice leaves the same state. Templates apply to backing indices created afterwards (the next rollover,
// up to 30 days away), so the write index of each data stream a template of nerve's already made gets the
// template's mappings too (`PUT <stream>/_mapping?write_index_only=true`, as Fleet does on an integration
// upgrade): a field an upgrade maps is searchable in new documents at once. Nothing is rewritten: documents
// indexed before keep their indexed fields, and a field the stream maps otherwise stops setup with an error
// naming the stream and the field.
import type { Client } from '@elastic/elasticsearch'
import type { IndicesPutMappingRequest } from '@elastic/elasticsearch/lib/api/types'
import { NerveError } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { ElasticsearchConfig } from '../schemas/types.ts'
import { createElasticsearchClient, reasonOf, statusOf } from './elasticsearch-client.ts'
import {
  componentTemplates,
  type IndexTemplate,
  ilmPolicy,
  ilmPolicyName,
  indexTemplates,
  templateMeta,
  templateVersion,
  writeIndexMappings,
} from './elasticsearch-templates.ts'

export type SetupElasticsearchDeps = { log: Logger; client?: Client }

/**
 * Returns what it installed, in order: the ILM policy, component templates, index templates, then the
 * mappings of the existing data streams' write indices.
 */
export async function setupElasticsearch(
  config: ElasticsearchConfig,
  deps: SetupElasticsearchDeps,
): Promise<{ applied: string[] }> {
  const client = deps.client ?? createElasticsearchClient(config)
  const applied: string[] = []
  const put = async (what: string, call: () => Promise<unknown>, advice = '') => {
    try {
      await call()
    } catch (cause) {
      throw failure(`PUT ${what}`, cause, advice)
    }
    applied.push(what)
    deps.log.info({ what }, 'Installed.')
  }
  try {
    await put(`_ilm/policy/${ilmPolicyName}`, () =>
      client.ilm.putLifecycle({ name: ilmPolicyName, policy: ilmPolicy }),
    )
    for (const component of componentTemplates) {
      await put(`_component_template/${component.name}`, () =>
        client.cluster.putComponentTemplate({
          name: component.name,
          template: component.template,
          version: templateVersion,
          _meta: templateMeta,
        }),
      )
    }
    for (const index of indexTemplates) {
      await put(`_index_template/${index.name}`, () =>
        client.indices.putIndexTemplate({
          name: index.name,
          index_patterns: index.index_patterns,
          data_stream: index.data_stream,
          priority: index.priority,
          composed_of: index.composed_of,
          version: templateVersion,
          _meta: templateMeta,
        }),
      )
    }
    for (const index of indexTemplates) {
      const mappings = writeIndexMappings(index) as Omit<IndicesPutMappingRequest, 'index'>
      for (const stream of await dataStreamsOf(client, index)) {
        await put(
          `${stream}/_mapping`,
          () => client.indices.putMapping({ index: stream, write_index_only: true, ...mappings }),
          `; ${stream} maps that field otherwise: its backing indices from the next rollover on take the ` +
            `template's mapping (POST ${stream}/_rollover to roll over now)`,
        )
      }
    }
  } finally {
    if (!deps.client) await client.close()
  }
  return { applied }
}

/** The data streams that exist and whose backing indices this template of nerve's makes (maybe none). */
async function dataStreamsOf(client: Client, index: IndexTemplate): Promise<string[]> {
  try {
    const { data_streams } = await client.indices.getDataStream({ name: index.index_patterns })
    return data_streams.filter((s) => s.template === index.name && !s.replicated).map((s) => s.name)
  } catch (cause) {
    if (statusOf(cause) === 404) return []
    throw failure(`GET _data_stream/${index.index_patterns.join(',')}`, cause)
  }
}

function failure(request: string, cause: unknown, advice = ''): NerveError {
  const status = statusOf(cause)
  return new NerveError(
    status === undefined ? 'SINK_UNAVAILABLE' : 'SINK_REJECTED',
    `${request} failed${status === undefined ? '' : ` (HTTP ${status})`}: ${reasonOf(cause)}` +
      (status === 400 ? advice : ''),
    { cause, retriable: status === undefined || status === 429 || status >= 500 },
  )
}
