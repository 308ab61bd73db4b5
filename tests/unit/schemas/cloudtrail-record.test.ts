import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { problemsOf, validateCloudTrailRecord } from '../../../schemas/input-validators.ts'

const fixtures = join(import.meta.dirname, '../../fixtures/cloudtrail')
const stratus = readFileSync(join(fixtures, 'stratus-red-team-detonation-logs.ndjson'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line) as Record<string, unknown>)

const problems = (value: unknown) =>
  validateCloudTrailRecord(value)
    ? []
    : problemsOf(validateCloudTrailRecord, value).map((p) => `${p.path} ${p.message}`)

const withIdentity = (identity: Record<string, unknown>) => {
  const record = stratus[0] as { userIdentity: Record<string, unknown> }
  return { ...record, userIdentity: { ...record.userIdentity, ...identity } }
}

describe('cloudtrail-record.schema.json', () => {
  it('accepts every Stratus Red Team detonation record', () => {
    expect(stratus.flatMap(problems)).toEqual([])
  })

  // A correlation copies the caller's principal id and ARN into every pair it makes, and on to the store,
  // the webhook and Elasticsearch: AWS keeps them far shorter (an ARN up to 2,048 characters), so a longer
  // one is a crafted record, refused as one rather than copied into every output.
  it('caps the caller identity strings a correlation copies', () => {
    const long = 'x'.repeat(2049)
    expect(problems(withIdentity({ principalId: `AROA${long}:s` }))).toEqual([
      '/userIdentity/principalId must NOT have more than 2048 characters',
    ])
    expect(problems(withIdentity({ arn: `arn:aws:sts::123456789012:assumed-role/${long}` }))).toEqual([
      '/userIdentity/arn must NOT have more than 2048 characters',
    ])
    expect(problems(withIdentity({ userName: long }))).toEqual([
      '/userIdentity/userName must NOT have more than 2048 characters',
    ])
    expect(problems(withIdentity({ accessKeyId: `ASIA${'X'.repeat(125)}` }))).toEqual([
      '/userIdentity/accessKeyId must NOT have more than 128 characters',
    ])
    expect(problems(withIdentity({ principalId: `AROA${'x'.repeat(2040)}:s` }))).toEqual([])
  })
})
