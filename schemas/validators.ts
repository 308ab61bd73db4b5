// One Ajv instance for the whole process; every schema compiled once, at import.
// `ajv.compile<T>` gives a type guard: after it passes, the value is trusted inside nerve.
import { createRequire } from 'node:module'
import type { CodeKeywordDefinition, ErrorObject, SchemaValidateFunction, ValidateFunction } from 'ajv'
import Ajv2020Module, { _, str } from 'ajv/dist/2020.js'
import { parseDuration } from './duration.ts'

const Ajv2020 = Ajv2020Module as unknown as typeof Ajv2020Module.default
const require = createRequire(import.meta.url)

/** Defaults are applied while validating: a validated config or item is complete. */
export const ajv = new Ajv2020({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true })

/**
 * ajv's own maxLength, counting characters (code points) as it does, but only for a string whose length in
 * UTF-16 units is over the limit: a string never has more characters than units, so a shorter one passes
 * without being read. ajv read every character of every capped string, which was most of the cost of
 * validating a Falco alert (its output and output fields are capped strings).
 */
const maxLength: CodeKeywordDefinition = {
  keyword: 'maxLength',
  type: 'string',
  schemaType: 'number',
  $data: true,
  error: {
    message: ({ schemaCode }) => str`must NOT have more than ${schemaCode} characters`,
    params: ({ schemaCode }) => _`{limit: ${schemaCode}}`,
  },
  code(cxt) {
    const { data, schemaCode, gen } = cxt
    const count = gen.scopeValue('func', { ref: characterCount })
    cxt.fail$data(_`${data}.length > ${schemaCode} && ${count}(${data}) > ${schemaCode}`)
  },
}
/**
 * ajv's own minLength, counting characters as it does, but only for a string shorter than twice the
 * limit in UTF-16 units (a string has at least half as many characters as units): the required names of
 * every CloudTrail record and Falco alert (`minLength: 1`) were read whole to learn they are not empty.
 */
const minLength: CodeKeywordDefinition = {
  keyword: 'minLength',
  type: 'string',
  schemaType: 'number',
  $data: true,
  error: {
    message: ({ schemaCode }) => str`must NOT have fewer than ${schemaCode} characters`,
    params: ({ schemaCode }) => _`{limit: ${schemaCode}}`,
  },
  code(cxt) {
    const { data, schemaCode, gen } = cxt
    const count = gen.scopeValue('func', { ref: characterCount })
    cxt.fail$data(
      _`${data}.length < ${schemaCode} || (${data}.length < 2 * ${schemaCode} && ${count}(${data}) < ${schemaCode})`,
    )
  },
}
ajv.removeKeyword('maxLength')
ajv.addKeyword(maxLength)
ajv.removeKeyword('minLength')
ajv.addKeyword(minLength)

/**
 * `"maxDuration": "24d"` beside a duration's `$ref`: the longest value, given as milliseconds or as text.
 * Node.js arms no timer past 2^31 - 1 ms (it fires after 1 ms instead, with a warning), so every duration
 * that arms one is capped; the rest are capped so that their arithmetic stays in safe integers.
 */
const withinMaxDuration: SchemaValidateFunction = (limit: string, data: unknown) => {
  const ms = typeof data === 'number' || typeof data === 'string' ? parseDuration(data) : undefined
  if (ms === undefined || ms <= (parseDuration(limit) as number)) return true
  withinMaxDuration.errors = [
    { keyword: 'maxDuration', message: `must be at most ${limit}`, params: { limit } },
  ]
  return false
}
ajv.addKeyword({ keyword: 'maxDuration', schemaType: 'string', errors: true, validate: withinMaxDuration })

/** Characters (code points) of a string: a surrogate pair counts once. */
function characterCount(text: string): number {
  let count = 0
  for (let i = 0; i < text.length; i++) {
    count++
    const c = text.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++
  }
  return count
}

export function compileSchema<T>(file: string): ValidateFunction<T> {
  return ajv.compile<T>(require(`./${file}`))
}

/** The raw config as the schema describes it (durations may still be strings). */
export const validateConfigFile = compileSchema<Record<string, unknown>>('config.schema.json')

export type ValidationProblem = { path: string; message: string }

/**
 * Ajv errors as short, human sentences keyed by JSON path (`/http/port`). The noise of `anyOf`
 * (one error per branch, then one for the anyOf itself) collapses into the anyOf's message.
 */
export function formatValidationErrors(
  errors: readonly ErrorObject[] | null | undefined,
): ValidationProblem[] {
  if (!errors) return []
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath))
  const problems: ValidationProblem[] = []
  const seen = new Set<string>()
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && anyOfPaths.has(e.instancePath) && /\/anyOf\/\d+\//.test(e.schemaPath))
      continue
    const problem = { path: e.instancePath || '/', message: describe(e) }
    const key = `${problem.path} ${problem.message}`
    if (seen.has(key)) continue
    seen.add(key)
    problems.push(problem)
  }
  return problems
}

function describe(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'additionalProperties':
      return `unknown key "${String(p.additionalProperty)}"`
    case 'required':
      return `missing required key "${String(p.missingProperty)}"`
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`
    case 'anyOf':
      return anyOfMessage(e)
    default:
      return e.message ?? e.keyword
  }
}

function anyOfMessage(e: ErrorObject): string {
  if (e.schemaPath.includes('duration'))
    return 'must be a duration: milliseconds, or a string such as 500ms, 90s, 2m, 1h'
  return e.message ?? 'does not match any allowed form'
}
