// The one place configuration is read: a YAML file (--config or NERVE_CONFIG) merged with NERVE_*
// environment overrides, validated by schemas/config.schema.json (defaults applied), durations turned
// into milliseconds, then deep-frozen. Every problem is reported at once, with its path.
import { readFileSync } from 'node:fs'
import { parseDocument } from 'yaml'
import { parseDuration } from '../schemas/duration.ts'
import type { Config } from '../schemas/types.ts'
import { formatValidationErrors, validateConfigFile } from '../schemas/validators.ts'
import { configSchemaRoot, durationRef, resolveRef, type SchemaNode } from './config-schema.ts'
import { suggestKey } from './did-you-mean.ts'
import { NerveError } from './errors.ts'

export type ConfigSource = { file?: string; env?: Record<string, string | undefined> }

export function loadConfig({ file, env = {} }: ConfigSource = {}): Config {
  const path = file ?? env.NERVE_CONFIG
  const raw = path ? readYaml(path) : {}
  applyEnv(raw, env)
  if (!validateConfigFile(raw)) {
    const problems = formatValidationErrors(validateConfigFile.errors).map(withSuggestion)
    const where = path ? ` in ${path}` : ''
    throw new NerveError(
      'CONFIG_INVALID',
      `Configuration${where} is invalid:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`,
      { details: problems },
    )
  }
  convertDurations(raw)
  return deepFreeze(raw as unknown as Config)
}

function readYaml(path: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    throw new NerveError('CONFIG_INVALID', `Cannot read config file ${path}: ${(cause as Error).message}`, {
      cause,
    })
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => `  ${e.message.split('\n')[0]}`)
    throw new NerveError('CONFIG_INVALID', `Config file ${path} is not valid YAML:\n${lines.join('\n')}`)
  }
  const value = doc.toJS() ?? {}
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new NerveError('CONFIG_INVALID', `Config file ${path} must hold a mapping at the top level.`)
  }
  return value as Record<string, unknown>
}

/** NERVE_* variables override the file (DESIGN.md "Config"). */
function applyEnv(raw: Record<string, unknown>, env: Record<string, string | undefined>): void {
  const set = (path: string[], value: unknown) => {
    let node = raw
    for (const key of path.slice(0, -1)) {
      if (typeof node[key] !== 'object' || node[key] === null) node[key] = {}
      node = node[key] as Record<string, unknown>
    }
    node[path.at(-1) as string] = value
  }
  if (env.NERVE_DATA_DIR) set(['data_dir'], env.NERVE_DATA_DIR)
  if (env.NERVE_LOG_LEVEL) set(['log', 'level'], env.NERVE_LOG_LEVEL)
  if (env.NERVE_HTTP_HOST) set(['http', 'host'], env.NERVE_HTTP_HOST)
  if (env.NERVE_HTTP_PORT) set(['http', 'port'], toIntegerOrText(env.NERVE_HTTP_PORT))
  const token = env.NERVE_INGEST_TOKEN || fromFile(env.NERVE_INGEST_TOKEN_FILE, 'NERVE_INGEST_TOKEN_FILE')
  if (token) set(['ingest', 'token'], token)
  if (env.NERVE_KAFKA_BROKERS) set(['kafka', 'brokers'], splitList(env.NERVE_KAFKA_BROKERS))
  if (env.NERVE_ELASTICSEARCH_URL) set(['sinks', 'elasticsearch', 'url'], env.NERVE_ELASTICSEARCH_URL)
  if (env.NERVE_ELASTICSEARCH_USERNAME)
    set(['sinks', 'elasticsearch', 'username'], env.NERVE_ELASTICSEARCH_USERNAME)
  const password =
    env.NERVE_ELASTICSEARCH_PASSWORD ||
    fromFile(env.NERVE_ELASTICSEARCH_PASSWORD_FILE, 'NERVE_ELASTICSEARCH_PASSWORD_FILE')
  if (password) set(['sinks', 'elasticsearch', 'password'], password)
  if (env.NERVE_ELASTICSEARCH_CA_FILE)
    set(['sinks', 'elasticsearch', 'ca_file'], env.NERVE_ELASTICSEARCH_CA_FILE)
  if (env.NERVE_KIBANA_URL) set(['sinks', 'kibana', 'url'], env.NERVE_KIBANA_URL)
  if (env.NERVE_REVOKE_WEBHOOK_URL) {
    const revoke = (raw.revoke ?? {}) as Record<string, unknown>
    const webhooks = Array.isArray(revoke.webhooks) ? revoke.webhooks : []
    const target: Record<string, unknown> = { url: env.NERVE_REVOKE_WEBHOOK_URL }
    if (env.NERVE_REVOKE_WEBHOOK_SECRET) target.secret = env.NERVE_REVOKE_WEBHOOK_SECRET
    set(['revoke', 'webhooks'], [...webhooks, target])
  }
}

/** A `*_FILE` variable (the Docker secrets convention): the file's text, trimmed. */
function fromFile(path: string | undefined, name: string): string | undefined {
  if (!path) return undefined
  try {
    return readFileSync(path, 'utf8').trim() || undefined
  } catch (err) {
    throw new NerveError('CONFIG_INVALID', `${name}: cannot read ${path}.`, { cause: err })
  }
}

const toIntegerOrText = (v: string): number | string => (/^\d+$/.test(v) ? Number(v) : v)
const splitList = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)

/** `unknown key "windw"` → `unknown key "windw" (did you mean "window"?)`. */
function withSuggestion(problem: { path: string; message: string }) {
  const key = /^unknown key "(.*)"$/.exec(problem.message)?.[1]
  const suggestion = key === undefined ? undefined : suggestKey(problem.path === '/' ? '' : problem.path, key)
  return suggestion ? { ...problem, message: `${problem.message} (did you mean "${suggestion}"?)` } : problem
}

/** Walks the schema beside the value and converts every value whose schema is the duration definition. */
function convertDurations(value: unknown, schema: SchemaNode = configSchemaRoot): unknown {
  // The value passed the schema's duration pattern.
  if (schema.$ref === durationRef) return parseDuration(value as number | string)
  const resolved = resolveRef(schema)
  if (Array.isArray(value) && resolved.items) {
    for (let i = 0; i < value.length; i++) value[i] = convertDurations(value[i], resolved.items)
  } else if (value && typeof value === 'object' && resolved.properties) {
    const obj = value as Record<string, unknown>
    for (const [key, sub] of Object.entries(resolved.properties)) {
      if (obj[key] !== undefined) obj[key] = convertDurations(obj[key], sub)
    }
  }
  return value
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

const secretKeys = new Set(['token', 'tokens', 'password', 'secret', 'secrets', 'api_key'])

/** The config with every secret replaced by "***", for `nerve config` and logs. */
export function redactSecrets(value: unknown, key = ''): unknown {
  if (secretKeys.has(key) && value !== undefined) {
    if (Array.isArray(value)) return value.map(() => '***')
    // A map of secrets (ingest.tokens) keeps its keys, so the printed config still has the shape it validates.
    if (value && typeof value === 'object')
      return Object.fromEntries(Object.keys(value).map((k) => [k, '***']))
    return '***'
  }
  if (typeof value === 'string') return maskUrlCredentials(value)
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v))
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactSecrets(v, k)]))
  }
  return value
}

/** Query parameters that carry credentials in webhook, Elasticsearch or Kafka URLs. */
const secretParams =
  /^(token|access_token|api_key|apikey|key|password|secret|sig|signature|x-amz-signature|x-amz-security-token|code)$/i

/**
 * A URL's password (`https://user:pass@host`) and credential-looking query values become `***`; the host,
 * path and user name stay so the operator can still tell which endpoint it is. Other text is unchanged.
 */
export function maskUrlCredentials(text: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return text
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return text
  }
  let changed = false
  if (url.password) {
    url.password = '***'
    changed = true
  }
  for (const name of [...url.searchParams.keys()]) {
    if (!secretParams.test(name)) continue
    url.searchParams.set(name, '***')
    changed = true
  }
  return changed ? url.toString() : text
}
