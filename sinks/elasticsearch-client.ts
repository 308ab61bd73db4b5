// The Elasticsearch client both the indexer and `nerve setup elasticsearch` use: API key or basic auth, an
// optional CA file, gzip, and no transport-level retries (the indexer classifies and retries itself).
import { readFileSync } from 'node:fs'
import { Client, errors } from '@elastic/elasticsearch'
import { NerveError } from '../runtime/errors.ts'
import type { ElasticsearchConfig } from '../schemas/types.ts'

/** Per-request timeout: client 9.x has none by default. */
const requestTimeoutMs = 30_000

export function createElasticsearchClient(config: ElasticsearchConfig): Client {
  if (!config.url) {
    throw new NerveError(
      'CONFIG_INVALID',
      'sinks.elasticsearch.url is not set (config file or NERVE_ELASTICSEARCH_URL).',
    )
  }
  return new Client({
    node: config.url,
    auth: authOf(config),
    tls: config.ca_file ? { ca: readCa(config.ca_file) } : undefined,
    maxRetries: 0,
    requestTimeout: requestTimeoutMs,
    compression: true,
  })
}

function authOf(config: ElasticsearchConfig) {
  if (config.api_key) return { apiKey: config.api_key }
  if (config.username) return { username: config.username, password: config.password ?? '' }
  return undefined
}

function readCa(path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (cause) {
    throw new NerveError('CONFIG_INVALID', `Cannot read sinks.elasticsearch.ca_file ${path}.`, { cause })
  }
}

/** HTTP status of a failed client call, or undefined for network errors and timeouts. */
export const statusOf = (err: unknown): number | undefined =>
  err instanceof errors.ResponseError ? err.statusCode : undefined

/** `type: reason` of an Elasticsearch error body, for logs and dead letters. */
export function reasonOf(err: unknown): string {
  if (err instanceof errors.ResponseError) {
    const cause = (err.body as { error?: { type?: string; reason?: string } } | undefined)?.error
    if (cause?.type) return `${cause.type}: ${cause.reason ?? ''}`.trim()
    return `HTTP ${err.statusCode}`
  }
  return err instanceof Error ? err.message : String(err)
}
