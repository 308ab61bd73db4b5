// The query parameters of the read API's lists (the store's, dead letters and late events, ingest's
// agents), checked at the boundary: unknown parameters, a `since`/`until` that is neither ISO 8601 nor
// epoch milliseconds (the whole value), a `min_score` outside 0..100, a `cursor` that is not one this API
// handed out, a `status` that is none of the list's, or a `limit` outside 1..1000 are a 400 that says
// which parameter and why. Pure.
import { NerveError } from './errors.ts'
import { givenTimeForms, parseGivenTime, quotedGiven } from './parse-given-time.ts'

export const defaultLimit = 100
export const maxLimit = 1000

/** Where the next page starts: the sort key (time, id) of the last item of the page before. */
export type Cursor = { time: number; id: string }

export type ListQuery = {
  since?: number
  until?: number
  min_score?: number
  cursor?: Cursor
  limit: number
  text: Record<string, string>
}

/** Parses the times, score, cursor and limit and keeps the other allowed parameters as text. */
export function parseListQuery(
  given: Record<string, string | undefined>,
  textParams: readonly string[],
  options: { minScore?: boolean; statuses?: readonly string[] } = {},
): ListQuery {
  const problems: { path: string; message: string }[] = []
  const typed = ['since', 'until', 'limit', 'cursor', ...(options.minScore ? ['min_score'] : [])]
  const allowed = new Set([...typed, ...textParams])
  // A parameter given twice (`?rule=a&rule=b`) arrives as an array, whatever the type says.
  const query: Record<string, string> = {}
  for (const [key, value] of Object.entries(given)) {
    if (!allowed.has(key))
      problems.push({ path: key, message: `unknown parameter; use ${[...allowed].join(', ')}` })
    else if (typeof value === 'string') query[key] = value
    else if (value !== undefined) problems.push({ path: key, message: 'must be given once' })
  }
  const text: Record<string, string> = {}
  for (const key of textParams) {
    const value = query[key]
    if (value === undefined) continue
    if (value === '') problems.push({ path: key, message: 'must not be empty' })
    else if (value.length > 512) problems.push({ path: key, message: 'must be at most 512 characters' })
    else text[key] = value
  }
  const { statuses } = options
  if (statuses && text.status !== undefined && !statuses.includes(text.status)) {
    problems.push({
      path: 'status',
      message: `must be one of ${statuses.join(', ')}, not ${quotedGiven(text.status)}`,
    })
    delete text.status
  }
  const result: ListQuery = { limit: defaultLimit, text }
  for (const key of ['since', 'until'] as const) {
    const raw = query[key]
    if (raw === undefined) continue
    const time = parseTime(raw)
    if (time === null)
      problems.push({
        path: key,
        message: `must be an ISO 8601 time (${givenTimeForms}) or epoch milliseconds, not ${quotedGiven(raw)}`,
      })
    else result[key] = time
  }
  if (query.limit !== undefined) {
    const limit = /^\d+$/.test(query.limit) ? Number(query.limit) : Number.NaN
    if (limit >= 1 && limit <= maxLimit) result.limit = limit
    else problems.push({ path: 'limit', message: `must be an integer from 1 to ${maxLimit}` })
  }
  if (query.min_score !== undefined && allowed.has('min_score')) {
    const score = /^\d{1,3}$/.test(query.min_score) ? Number(query.min_score) : Number.NaN
    if (score >= 0 && score <= 100) result.min_score = score
    else problems.push({ path: 'min_score', message: 'must be an integer from 0 to 100' })
  }
  if (query.cursor !== undefined) {
    const cursor = decodeCursor(query.cursor)
    if (cursor) result.cursor = cursor
    else problems.push({ path: 'cursor', message: 'must be the "next" value of an earlier answer' })
  }
  if (problems.length > 0) {
    const message = problems.map((p) => `${p.path}: ${p.message}`).join('; ')
    throw new NerveError('INPUT_INVALID', `Invalid query: ${message}.`, { details: problems })
  }
  return result
}

/**
 * `correlations=` of an incident's detail: how many of its newest correlations to answer, 1..`max` (the
 * default); anything else is a 400. Other parameters are left alone, as before (`?token=` among them).
 */
export function parseIncidentCorrelations(query: Record<string, string | undefined>, max: number): number {
  const value = query.correlations
  if (value === undefined) return max
  if (/^\d{1,4}$/.test(value) && Number(value) >= 1 && Number(value) <= max) return Number(value)
  const problem = { path: 'correlations', message: `must be an integer from 1 to ${max}` }
  throw new NerveError('INPUT_INVALID', `Invalid query: ${problem.path}: ${problem.message}.`, {
    details: [problem],
  })
}

/** Epoch ms from `1732550400000` or `2024-11-25T16:00:00Z` (the whole value); null when it is neither. */
export function parseTime(value: string): number | null {
  return parseGivenTime(value, { epochMs: true }) ?? null
}

/** An opaque token for the client: base64url of `[time, id]`. */
export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.time, cursor.id])).toString('base64url')
}

export function decodeCursor(text: string): Cursor | null {
  if (text.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(text)) return null
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'))
    if (!Array.isArray(value) || value.length !== 2) return null
    const [time, id] = value
    if (!Number.isSafeInteger(time) || typeof id !== 'string' || id.length > 512) return null
    return { time, id }
  } catch {
    return null
  }
}
