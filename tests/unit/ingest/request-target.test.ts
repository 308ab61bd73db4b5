// The resource a CloudTrail request names, from the real Stratus records' request parameters.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { requestTarget } from '../../../ingest/request-target.ts'

const records = readFileSync(
  join(import.meta.dirname, '../../fixtures/cloudtrail/stratus-red-team-detonation-logs.ndjson'),
  'utf8',
)
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { requestParameters?: Record<string, unknown> | null; eventName: string })
const at = (line: number) => records[line - 1]?.requestParameters

describe('requestTarget', () => {
  it('names the secret, the parameter, the role and the snapshot a call touched', () => {
    expect(requestTarget(at(85), [])).toMatch(
      /^arn:aws:secretsmanager:.*:secret:stratus-red-team-retrieve-secret-/,
    )
    expect(requestTarget(at(108), [])).toMatch(/ \(\+\d+\)$/)
    expect(requestTarget(at(293), [])).toBe('stratus-red-team-backdoor-r-role')
    expect(requestTarget(at(268), [])).toMatch(/^snap-/)
  })

  it('falls back to the first resource ARN, bounds the length, and names nothing when nothing is named', () => {
    expect(requestTarget(null, ['arn:aws:s3:::bucket'])).toBe('arn:aws:s3:::bucket')
    expect(requestTarget({ secretId: 'x'.repeat(1000) }, [])).toHaveLength(256)
    expect(requestTarget(null, [])).toBeUndefined()
  })
})
