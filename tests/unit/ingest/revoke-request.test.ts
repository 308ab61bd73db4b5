// What a revoke-shaped CloudTrail call revokes, read once at ingest (core.revokes): the console's "Revoke
// active sessions" document on a real Stratus Red Team record's shape, and the watched agent's hostile
// variants of it, which are no revoke and cost no more than a parse.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { normalizeCloudTrailRecord } from '../../../ingest/normalize-cloudtrail-record.ts'
import { revokeRequest } from '../../../ingest/revoke-request.ts'
import type { CloudTrailRecord } from '../../../schemas/input-validators.ts'
import { denyOlderSessions } from '../../helpers/deny-older-sessions.ts'

const stratus = JSON.parse(
  readFileSync(
    join(import.meta.dirname, '../../fixtures/cloudtrail/stratus-red-team-detonation-logs.ndjson'),
    'utf8',
  ).split('\n')[0] as string,
) as CloudTrailRecord
const callTime = Date.parse('2024-08-01T13:31:00Z')
const issued = '2024-08-01T13:31:00Z'
const document = denyOlderSessions
const putRolePolicy = (policyDocument: unknown, over: Partial<CloudTrailRecord> = {}): CloudTrailRecord => ({
  ...stratus,
  eventName: 'PutRolePolicy',
  eventSource: 'iam.amazonaws.com',
  eventTime: issued,
  errorCode: undefined,
  errorMessage: undefined,
  requestParameters: { roleName: 'data-cleaner', policyName: 'AWSRevokeOlderSessions', policyDocument },
  ...over,
})
const revokesOf = (record: CloudTrailRecord) => {
  const result = normalizeCloudTrailRecord(record, {
    via: 'cloudtrail_record',
    receivedAt: 0,
    isSelfIdentity: () => false,
  })
  if (!result.ok) throw new Error(JSON.stringify(result.problems))
  return result.event.core?.revokes
}

describe('core.revokes', () => {
  it("carries the role and issue time of the console's deny-older-sessions policy", () => {
    expect(revokesOf(putRolePolicy(document(issued)))).toEqual({
      kind: 'role',
      name: 'data-cleaner',
      issued_before: callTime,
    })
    expect(revokesOf(putRolePolicy(encodeURIComponent(document(issued))))?.issued_before).toBe(callTime)
  })

  it('is absent for a failed call, another policy, or any other action', () => {
    expect(revokesOf(putRolePolicy(document(issued), { errorCode: 'AccessDenied' }))).toBeUndefined()
    expect(revokesOf(stratus)).toBeUndefined()
    const allow = document(issued).replace('"Deny"', '"Allow"')
    expect(revokesOf(putRolePolicy(allow))).toBeUndefined()
  })

  it('names the key of a deactivation or deletion, not of a reactivation', () => {
    const key = (eventName: string, status?: string) =>
      revokesOf({
        ...stratus,
        eventName,
        eventSource: 'iam.amazonaws.com',
        errorCode: undefined,
        errorMessage: undefined,
        requestParameters: { userName: 'svc', accessKeyId: 'AKIA0W5KI69TY8X86BGT', status },
      })
    expect(key('UpdateAccessKey', 'Inactive')).toEqual({ kind: 'access_key', name: 'AKIA0W5KI69TY8X86BGT' })
    expect(key('DeleteAccessKey')).toEqual({ kind: 'access_key', name: 'AKIA0W5KI69TY8X86BGT' })
    expect(key('UpdateAccessKey', 'Active')).toBeUndefined()
  })
})

describe('revokeRequest on hostile documents', () => {
  const at = (policyDocument: unknown, roleName: unknown = 'data-cleaner') =>
    revokeRequest('iam:PutRolePolicy', { roleName, policyDocument }, callTime, undefined)

  it('is no revoke for a badly encoded, truncated or non-JSON document', () => {
    expect(at('%E0%A4%A')).toBeUndefined()
    expect(at(`%${encodeURIComponent(document(issued))}`)).toBeUndefined()
    expect(at(document(issued).slice(0, -1))).toBeUndefined()
    expect(at('AWSRevokeOlderSessions')).toBeUndefined()
    expect(at(null)).toBeUndefined()
  })

  it('is no revoke for an invalid or past date', () => {
    expect(at(document('not a date'))).toBeUndefined()
    expect(at(document(1_722_519_060_000))).toBeUndefined()
    expect(at(document('2001-01-01T00:00:00Z'))).toBeUndefined()
    expect(at(document('+275760-09-13T00:00:00.001Z'))).toBeUndefined()
  })

  // The attack: the same document dated ahead denies every session issued until then, new ones included,
  // and was ignored as a revoke: the watched agent could lock nerve's revoker (or any role) out for good.
  it('is no revoke for a date ahead of the call past the tolerance: that locks the role out', () => {
    const minutes = (n: number) => new Date(callTime + n * 60_000).toISOString()
    expect(at(document(minutes(15)))?.issued_before).toBe(callTime + 15 * 60_000)
    expect(at(document(minutes(-15)))?.issued_before).toBe(callTime - 15 * 60_000)
    expect(at(document(minutes(16)))).toBeUndefined()
    expect(at(document(minutes(30 * 24 * 60)))).toBeUndefined()
    expect(at(document('2099-01-01T00:00:00Z'))).toBeUndefined()
    expect(at(document('+275760-09-13T00:00:00.000Z'))).toBeUndefined()
  })

  it('looks no deeper than the statement in a deeply nested document, and reads a huge one once', () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`
    expect(at(deep)).toBeUndefined()
    const nested = document(issued).replace(
      '"Resource":"*"',
      `"Resource":${'['.repeat(50_000)}"*"${']'.repeat(50_000)}`,
    )
    expect(at(nested)).toBeUndefined()
    const padded = JSON.parse(document(issued))
    padded.Statement.Sid = 'x'.repeat(4 << 20)
    expect(at(JSON.stringify(padded))).toEqual({
      kind: 'role',
      name: 'data-cleaner',
      issued_before: callTime,
    })
    padded.Statement.Padding = 'x'
    expect(at(JSON.stringify(padded))).toBeUndefined()
  })

  // IAM's date operators read the W3C profile of ISO 8601 or epoch seconds. Date.parse read far more: an
  // RFC 2822 or English date (which IAM refuses: the document denies nothing, yet was taken for a revoke)
  // and a time without an offset in the host's time zone (replay's output changed with TZ).
  it('reads the issue time only as IAM does: ISO 8601 with its offset, or epoch seconds', () => {
    expect(at(document('2024-08-01T13:31:00Z'))?.issued_before).toBe(callTime)
    expect(at(document('2024-08-01T13:31Z'))?.issued_before).toBe(callTime)
    expect(at(document('2024-08-01T13:31:00.250Z'))?.issued_before).toBe(callTime + 250)
    expect(at(document('2024-08-01T15:31:00+02:00'))?.issued_before).toBe(callTime)
    expect(at(document('2024-08-01T08:31:00-05:00'))?.issued_before).toBe(callTime)
    expect(at(document(String(callTime / 1000)))?.issued_before).toBe(callTime)
    expect(at(document(callTime / 1000))?.issued_before).toBe(callTime)
    for (const spelling of [
      '2024-08-01T13:31:00',
      '2024-08-01 13:31:00Z',
      'Thu, 01 Aug 2024 13:31:00 GMT',
      'August 1, 2024 13:31 UTC',
      '08/01/2024 13:31',
      '2024-08-01T13:31:00z',
      '2024-08-01T13:31:00+0000',
      '2024-08-01T13:31:60Z',
      '2024-08-01T24:31:00Z',
      '2024-08-32T13:31:00Z',
    ])
      expect(at(document(spelling)), spelling).toBeUndefined()
  })

  // JSON.parse keeps a key's last copy: `"Statement"` twice, the first an Allow on everything, read as the
  // deny-older-sessions document alone. The document is no revoke, at whatever level the key repeats.
  it('is no revoke for a document naming a key twice, at any level', () => {
    const allowAll = '"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}],'
    const twice = document(issued).replace('"Statement":', `${allowAll}"Statement":`)
    expect(JSON.parse(twice).Statement.Effect).toBe('Deny')
    expect(at(twice)).toBeUndefined()
    expect(at(encodeURIComponent(twice))).toBeUndefined()
    expect(
      at(document(issued).replace('"Effect":"Deny"', '"Effect":"Allow","Effect":"Deny"')),
    ).toBeUndefined()
    const condition = '"DateLessThan":{"aws:TokenIssueTime":"2024-08-01T13:31:00Z",'
    expect(at(document(issued).replace('"DateLessThan":{', `${condition}`))).toBeUndefined()
    // A colon or a key-like text inside a string is no key.
    const sid = document(issued).replace('"Effect"', '"Sid":"Effect\\":\\"Allow:1","Effect"')
    expect(at(sid)?.issued_before).toBe(callTime)
  })

  it('is no revoke for a role name no IAM call can carry', () => {
    expect(at(document(issued), 'r'.repeat(129))).toBeUndefined()
    expect(at(document(issued), { name: 'data-cleaner' })).toBeUndefined()
  })
})
