// The one place configuration is read: a YAML file (--config or NERVE_CONFIG) merged with NERVE_*
// environment overrides (config-env.ts), validated by schemas/config.schema.json (defaults applied) and by
// what the schema cannot say (config-checks.ts), durations turned into milliseconds, then deep-frozen.
// Every problem is reported at once, with its path and, when a NERVE_* variable set it, the variable.
import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { parseDocument } from 'yaml'
import { parseDuration } from '../schemas/duration.ts'
import type { Config } from '../schemas/types.ts'
import { formatValidationErrors, validateConfigFile } from '../schemas/validators.ts'
import { configProblems } from './config-checks.ts'
import { applyEnv, envOrigin, envProblems } from './config-env.ts'
import { configSchemaRoot, durationRef, resolveRef, type SchemaNode } from './config-schema.ts'
import { suggestKey } from './did-you-mean.ts'
import { NerveError } from './errors.ts'

export type ConfigSource = {
  file?: string
  env?: Record<string, string | undefined>
  /** Why a file the config names cannot be read (default: asks this machine's file system). */
  fileProblem?: (path: string) => string | undefined
}

export function loadConfig({ file, env = {}, fileProblem = unreadableFile }: ConfigSource = {}): Config {
  const path = file ?? env.NERVE_CONFIG
  const raw = path ? readYaml(path) : {}
  const origins = applyEnv(raw, env)
  const problems = validateConfigFile(raw)
    ? configProblems(raw as unknown as Config, { fileProblem })
    : formatValidationErrors(validateConfigFile.errors).map(withSuggestion)
  problems.push(...envProblems(env))
  if (problems.length > 0) {
    const blamed = problems.map((p) => ({ ...p, variable: envOrigin(origins, p.path) }))
    // The file is named when it is to blame for one problem at least.
    const where = path && blamed.some((p) => !p.variable) ? ` in ${path}` : ''
    const details = blamed.map(({ path, message, variable }) => ({
      path,
      message: variable ? `${message} (from ${variable})` : message,
    }))
    throw new NerveError(
      'CONFIG_INVALID',
      `Configuration${where} is invalid:\n${details.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`,
      { details },
    )
  }
  convertDurations(raw)
  return deepFreeze(raw as unknown as Config)
}

/** Why a file the config names cannot be read (missing, a directory, no permission), or undefined. */
function unreadableFile(path: string): string | undefined {
  try {
    if (!statSync(path).isFile()) return `${path} is not a file`
    accessSync(path, constants.R_OK)
    return undefined
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return `${path}: no such file`
    if (code === 'EACCES' || code === 'EPERM') return `${path}: permission denied`
    return `cannot read ${path} (${code ?? (err as Error).message})`
  }
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
