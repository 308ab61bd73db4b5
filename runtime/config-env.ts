// Every environment variable nerve reads, once: which config key each one sets and how its text becomes
// a value. loadConfig applies them over the file (and remembers which variable set which key, so that a
// problem is blamed on the variable); `nerve run --help` and docs/configuration.md are written from this
// table, and a test fails when the code reads a NERVE_* variable it does not list.
import { readFileSync } from 'node:fs'
import { NerveError } from './errors.ts'

export type EnvVariable = {
  name: string
  /** The config key it sets (dotted); `revoke.webhooks[]` appends a target. */
  key: string
  description: string
  /** From the variable's text to the config value (default: the text). */
  value?: (text: string) => unknown
  /** `*_FILE` (the Docker secrets convention): the value is the named file's text, trimmed. */
  file?: true
}

export const envVariables: readonly EnvVariable[] = [
  { name: 'NERVE_CONFIG', key: '', description: 'The config file, when `--config` is not given.' },
  { name: 'NERVE_DATA_DIR', key: 'data_dir', description: 'Where nerve keeps its data (default `./data`).' },
  { name: 'NERVE_LOG_LEVEL', key: 'log.level', description: 'Lowest log level written (default `info`).' },
  { name: 'NERVE_HTTP_HOST', key: 'http.host', description: 'Listen address (default `127.0.0.1`).' },
  {
    name: 'NERVE_HTTP_PORT',
    key: 'http.port',
    description: 'Listen port (default `8080`).',
    value: (v) => (/^\d+$/.test(v) ? Number(v) : v),
  },
  {
    name: 'NERVE_INGEST_TOKEN',
    key: 'ingest.token',
    description: 'The ingest token, at least 16 characters (default: generated once, kept in the data dir).',
  },
  {
    name: 'NERVE_INGEST_TOKEN_FILE',
    key: 'ingest.token',
    description:
      'A file holding the ingest token (a Docker or Kubernetes secret); `NERVE_INGEST_TOKEN` wins.',
    file: true,
  },
  {
    name: 'NERVE_KAFKA_BROKERS',
    key: 'kafka.brokers',
    description: 'Comma-separated bootstrap brokers: turns the Kafka bus on.',
    value: (v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
  },
  {
    name: 'NERVE_ELASTICSEARCH_URL',
    key: 'sinks.elasticsearch.url',
    description: 'Elasticsearch URL: turns the Elasticsearch sink on.',
  },
  {
    name: 'NERVE_ELASTICSEARCH_USERNAME',
    key: 'sinks.elasticsearch.username',
    description: 'Elasticsearch basic-auth user.',
  },
  {
    name: 'NERVE_ELASTICSEARCH_PASSWORD',
    key: 'sinks.elasticsearch.password',
    description: 'Elasticsearch basic-auth password.',
  },
  {
    name: 'NERVE_ELASTICSEARCH_PASSWORD_FILE',
    key: 'sinks.elasticsearch.password',
    description: 'A file holding the Elasticsearch password; `NERVE_ELASTICSEARCH_PASSWORD` wins.',
    file: true,
  },
  {
    name: 'NERVE_ELASTICSEARCH_CA_FILE',
    key: 'sinks.elasticsearch.ca_file',
    description: 'PEM CA that signs the cluster’s certificate (Kibana’s too).',
  },
  { name: 'NERVE_KIBANA_URL', key: 'sinks.kibana.url', description: 'Kibana URL, for `nerve setup kibana`.' },
  {
    name: 'NERVE_REVOKE_WEBHOOK_URL',
    key: 'revoke.webhooks[]',
    description: 'Adds a revoke webhook target with this URL (after those of the file).',
  },
  {
    name: 'NERVE_REVOKE_WEBHOOK_SECRET',
    key: 'revoke.webhooks[].secret',
    description:
      'The `whsec_` secret of the target `NERVE_REVOKE_WEBHOOK_URL` adds; refused when that variable is not set.',
  },
]

/** Which variable set each config path (JSON pointer, as in validation problems). */
export type EnvOrigins = Map<string, string>

/**
 * Applies the variables that are set over `raw` (the file's content) and says which set what. A variable
 * and its `*_FILE` twin set the same key: the plain one wins.
 */
export function applyEnv(raw: Record<string, unknown>, env: Record<string, string | undefined>): EnvOrigins {
  const origins: EnvOrigins = new Map()
  for (const variable of envVariables) {
    const text = env[variable.name]
    if (!text || variable.key === '' || variable.key.startsWith('revoke.')) continue
    const path = variable.key.split('.')
    if (origins.has(pointer(path))) continue
    const value = variable.file ? fileText(text, variable.name) : text
    if (value === undefined) continue
    setAt(raw, path, variable.value ? variable.value(value) : value)
    origins.set(pointer(path), variable.name)
  }
  const url = env.NERVE_REVOKE_WEBHOOK_URL
  if (url) {
    const revoke = (raw.revoke ?? {}) as Record<string, unknown>
    const webhooks = Array.isArray(revoke.webhooks) ? revoke.webhooks : []
    const target: Record<string, unknown> = { url }
    if (env.NERVE_REVOKE_WEBHOOK_SECRET) target.secret = env.NERVE_REVOKE_WEBHOOK_SECRET
    setAt(raw, ['revoke', 'webhooks'], [...webhooks, target])
    origins.set(`/revoke/webhooks/${webhooks.length}`, 'NERVE_REVOKE_WEBHOOK_URL')
    if (target.secret)
      origins.set(`/revoke/webhooks/${webhooks.length}/secret`, 'NERVE_REVOKE_WEBHOOK_SECRET')
  }
  return origins
}

/** Problems of the variables themselves: a secret set for a target no variable adds is refused. */
export function envProblems(env: Record<string, string | undefined>): { path: string; message: string }[] {
  if (!env.NERVE_REVOKE_WEBHOOK_SECRET || env.NERVE_REVOKE_WEBHOOK_URL) return []
  return [
    {
      path: '/revoke/webhooks',
      message:
        'NERVE_REVOKE_WEBHOOK_SECRET is set but NERVE_REVOKE_WEBHOOK_URL is not: the secret signs only the target that NERVE_REVOKE_WEBHOOK_URL adds (a target of the file takes its secret in the file)',
    },
  ]
}

/** The variable behind a problem's path: the one that set it or the nearest object above it. */
export function envOrigin(origins: EnvOrigins, path: string): string | undefined {
  for (let p = path; p !== ''; p = p.slice(0, p.lastIndexOf('/'))) {
    const name = origins.get(p)
    if (name) return name
  }
  return undefined
}

/** The variables as a Markdown table, for docs/configuration.md. */
export function envReferenceMarkdown(): string {
  const rows = envVariables.map((v) => {
    const key = v.key === '' ? '' : `\`${v.key}\``
    return `| \`${v.name}\` | ${key} | ${v.description} |`
  })
  return ['| variable | sets | description |', '| --- | --- | --- |', ...rows, ''].join('\n')
}

function fileText(path: string, name: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined
  } catch (err) {
    throw new NerveError('CONFIG_INVALID', `${name}: cannot read ${path}.`, { cause: err })
  }
}

const pointer = (path: readonly string[]) => `/${path.join('/')}`

function setAt(raw: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = raw
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {}
    node = node[key] as Record<string, unknown>
  }
  node[path.at(-1) as string] = value
}
