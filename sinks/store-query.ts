// The query parameters of the embedded store's read API, checked at the boundary: unknown parameters,
// a `since` that is neither ISO 8601 nor epoch milliseconds, or a `limit` outside 1..1000 are a 400 that
// says which parameter and why. Pure.
import { isValid, parseISO } from 'date-fns'
import { NerveError } from '../runtime/errors.ts'

export const defaultLimit = 100
export const maxLimit = 1000

export type ListQuery = { since?: number; limit: number; text: Record<string, string> }

/** Parses `since` and `limit` and keeps the other allowed parameters as text. */
export function parseListQuery(
  query: Record<string, string | undefined>,
  textParams: readonly string[],
): ListQuery {
  const problems: { path: string; message: string }[] = []
  const allowed = new Set(['since', 'limit', ...textParams])
  for (const key of Object.keys(query)) {
    if (!allowed.has(key))
      problems.push({ path: key, message: `unknown parameter; use ${[...allowed].join(', ')}` })
  }
  const text: Record<string, string> = {}
  for (const key of textParams) {
    const value = query[key]
    if (value === undefined) continue
    if (value === '') problems.push({ path: key, message: 'must not be empty' })
    else text[key] = value
  }
  const since = query.since === undefined ? undefined : parseTime(query.since)
  if (since === null) {
    problems.push({ path: 'since', message: 'must be an ISO 8601 time or epoch milliseconds' })
  }
  let limit = defaultLimit
  if (query.limit !== undefined) {
    limit = /^\d+$/.test(query.limit) ? Number(query.limit) : Number.NaN
    if (!(limit >= 1 && limit <= maxLimit)) {
      problems.push({ path: 'limit', message: `must be an integer from 1 to ${maxLimit}` })
    }
  }
  if (problems.length > 0) {
    const message = problems.map((p) => `${p.path}: ${p.message}`).join('; ')
    throw new NerveError('INPUT_INVALID', `Invalid query: ${message}.`, { details: problems })
  }
  return { ...(since == null ? {} : { since }), limit, text }
}

/** Epoch ms from `1732550400000` or `2024-11-25T16:00:00Z`; null when it is neither. */
export function parseTime(value: string): number | null {
  if (/^\d{1,15}$/.test(value)) return Number(value)
  const date = parseISO(value)
  return isValid(date) ? date.getTime() : null
}
