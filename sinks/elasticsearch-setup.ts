// `nerve setup elasticsearch`: installs the ILM policy, the component templates and the composable index
// templates of sinks/elasticsearch-templates.ts. Every call is a PUT of the whole object, so running it
// twice leaves the same state. Templates apply to backing indices created afterwards (the next rollover);
// existing data are not touched.
import type { Client } from '@elastic/elasticsearch'
import { NerveError } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import type { ElasticsearchConfig } from '../schemas/types.ts'
import { createElasticsearchClient, reasonOf, statusOf } from './elasticsearch-client.ts'
import {
  componentTemplates,
  ilmPolicy,
  ilmPolicyName,
  indexTemplates,
  templateMeta,
  templateVersion,
} from './elasticsearch-templates.ts'

export type SetupElasticsearchDeps = { log: Logger; client?: Client }

/** Returns what it installed, in order: the ILM policy, component templates, index templates. */
export async function setupElasticsearch(
  config: ElasticsearchConfig,
  deps: SetupElasticsearchDeps,
): Promise<{ applied: string[] }> {
  const client = deps.client ?? createElasticsearchClient(config)
  const applied: string[] = []
  const put = async (what: string, call: () => Promise<unknown>) => {
    try {
      await call()
    } catch (cause) {
      const status = statusOf(cause)
      throw new NerveError(
        status === undefined ? 'SINK_UNAVAILABLE' : 'SINK_REJECTED',
        `PUT ${what} failed${status === undefined ? '' : ` (HTTP ${status})`}: ${reasonOf(cause)}`,
        { cause, retriable: status === undefined || status === 429 || status >= 500 },
      )
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
  } finally {
    if (!deps.client) await client.close()
  }
  return { applied }
}
