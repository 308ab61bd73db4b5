// What a revoke-shaped CloudTrail call revokes, read from its requestParameters once, at ingest: the
// correlator (correlate/revoke-confirmations.ts) reads the result, core.revokes, and never the request.
// Pure. A successful `iam:PutRolePolicy` revokes its role's older sessions only when its document is
// exactly the deny-older-sessions policy (one statement: Deny every action on every resource for tokens
// issued before the time of the call); the policy name proves nothing (the watched agent names its
// policies). `iam:UpdateAccessKey` to Inactive and `iam:DeleteAccessKey` name the key they revoke; the
// correlator counts them as revokes only when nerve's revoker made them. The document is the caller's own
// text: it is parsed here or not at all, and nothing of it but the role name and the time is kept. It is
// read no more loosely than IAM reads it: a date IAM would not read, or a key given twice, is no revoke.
import type { CoreFields } from '../schemas/types.ts'
import { hasDuplicateKeys, parseJson } from './json-text.ts'

export type RevokeRequest = NonNullable<CoreFields['revokes']>

/** Longer than any IAM role name (64) or access key id (128): no successful call names one. */
const maxNameLength = 128

/**
 * What the call revokes, or undefined when it is no revoke (another action, a failed call, a role policy
 * that is anything but the deny-older-sessions document). `time`: the call's event time, epoch ms.
 */
export function revokeRequest(
  action: string,
  params: Record<string, unknown> | null | undefined,
  time: number,
  errorCode: string | undefined,
): RevokeRequest | undefined {
  if (errorCode !== undefined || !params) return undefined
  if (action === 'iam:PutRolePolicy') {
    const issuedBefore = denyOlderSessionsBound(params.policyDocument, time)
    if (!isName(params.roleName) || issuedBefore === undefined) return undefined
    return { kind: 'role', name: params.roleName, issued_before: issuedBefore }
  }
  if (action === 'iam:UpdateAccessKey' && params.status !== 'Inactive') return undefined
  if (action !== 'iam:UpdateAccessKey' && action !== 'iam:DeleteAccessKey') return undefined
  return isName(params.accessKeyId) ? { kind: 'access_key', name: params.accessKeyId } : undefined
}

const isName = (v: unknown): v is string => typeof v === 'string' && v.length <= maxNameLength

/** Tolerance for the condition time: the console and nerve's revoker write "now", clocks drift. */
const issueTimeTolerance = 15 * 60_000

/**
 * The AWS console's "Revoke active sessions" document, and nothing more: exactly one statement, Effect
 * Deny, Action `*` and Resource `*` (plain or in a one-element list), and a condition that is exactly
 * `DateLessThan aws:TokenIssueTime` at the time of the call, give or take the tolerance. A time in the
 * past denies no live session; a time ahead denies the sessions issued until then too, so it locks the
 * role out (a time in 2099: for good) and is an attack on the role, not a revoke. Anything else (an extra
 * Allow, NotAction, another condition) is not a revoke.
 */
export function isDenyOlderSessions(document: unknown, callTime: number): boolean {
  return denyOlderSessionsBound(document, callTime) !== undefined
}

/** The deny-older-sessions document's aws:TokenIssueTime (epoch ms), or undefined when it is not one. */
function denyOlderSessionsBound(document: unknown, callTime: number): number | undefined {
  let doc: unknown = document
  if (typeof doc === 'string') {
    try {
      const text = doc.trimStart().startsWith('%') ? decodeURIComponent(doc) : doc
      doc = parseJson(text)
      // A key given twice: JSON.parse keeps the last copy (a Deny), while a first one (an Allow on `*`)
      // is what another reader may take. Such a document is no revoke, whichever copy IAM keeps.
      if (hasDuplicateKeys(text, doc)) return undefined
    } catch {
      return undefined
    }
  }
  if (!isObject(doc) || !onlyKeys(doc, ['Version', 'Statement', 'Id'])) return undefined
  const statements = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement]
  if (statements.length !== 1) return undefined
  const s = statements[0]
  if (!isObject(s) || !onlyKeys(s, ['Sid', 'Effect', 'Action', 'Resource', 'Condition'])) return undefined
  if (s.Effect !== 'Deny' || !isStar(s.Action) || !isStar(s.Resource)) return undefined
  const condition = s.Condition
  if (!isObject(condition) || !onlyKeys(condition, ['DateLessThan'])) return undefined
  const dateLessThan = condition.DateLessThan
  if (!isObject(dateLessThan) || !onlyKeys(dateLessThan, ['aws:TokenIssueTime'])) return undefined
  const time = iamDate(dateLessThan['aws:TokenIssueTime'])
  return time !== undefined && Math.abs(time - callTime) <= issueTimeTolerance ? time : undefined
}

/** W3C's profile of ISO 8601: a year, a month or a day, or a day and a time with its offset. */
const w3cDateTime =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:Z|([+-])(\d{2}):(\d{2})))?)?)?$/

/**
 * A date condition value as IAM reads one, epoch ms: the W3C profile of ISO 8601 (a time only with its
 * offset, Z or ±hh:mm) or epoch seconds; undefined for anything else. Never Date.parse: it also reads
 * "Mon, 07 Dec 2026 21:00:00 GMT" and "December 7, 2026 21:00 UTC", which IAM refuses, and a time without an
 * offset in the host's time zone, which would make replay's output depend on TZ.
 */
function iamDate(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value * 1000 : undefined
  if (typeof value !== 'string') return undefined
  if (/^\d{1,12}$/.test(value)) return Number(value) * 1000
  const m = w3cDateTime.exec(value)
  if (!m) return undefined
  const part = (i: number, absent: number) => (m[i] === undefined ? absent : Number(m[i]))
  const [year, month, day] = [part(1, 0), part(2, 1), part(3, 1)]
  const [hour, minute, second] = [part(4, 0), part(5, 0), part(6, 0)]
  const ms = Number(`${m[7] ?? ''}00`.slice(0, 3))
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms))
  date.setUTCFullYear(year) // Date.UTC reads years 0 to 99 as 1900 to 1999
  // Date.UTC rolls over (month 13, 31 November, 24:00): a value it had to roll is not a date.
  const exact =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second
  const offsetHours = Number(m[9] ?? 0)
  const offsetMinutes = Number(m[10] ?? 0)
  if (!exact || offsetHours > 23 || offsetMinutes > 59) return undefined
  const offset = (m[8] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000
  return date.getTime() - offset
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v)

const onlyKeys = (o: Record<string, unknown>, allowed: readonly string[]) =>
  Object.keys(o).every((k) => allowed.includes(k))

const isStar = (v: unknown) => v === '*' || (Array.isArray(v) && v.length === 1 && v[0] === '*')
