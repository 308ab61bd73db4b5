import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isInsightRecord, normalizeCloudTrailRecord } from '../../../ingest/normalize-cloudtrail-record.ts'
import type { NormalizeContext } from '../../../ingest/normalized-draft.ts'
import type { CloudTrailRecord } from '../../../schemas/input-validators.ts'

const lines = (file: string) =>
  readFileSync(join(import.meta.dirname, '../../fixtures/cloudtrail', file), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as CloudTrailRecord)
const ctx: NormalizeContext = { via: 'cloudtrail_record', receivedAt: 9, isSelfIdentity: () => false }
const normalize = (record: CloudTrailRecord, context = ctx) => {
  const result = normalizeCloudTrailRecord(record, context)
  if (!result.ok) throw new Error(JSON.stringify(result.problems))
  return result.event
}

describe('normalizeCloudTrailRecord', () => {
  // What tells a call denied by a revoke of older sessions from one denied to a session issued after it.
  it("keeps a failed call's session issue time, and no other call's", () => {
    const records = lines('stratus-red-team-detonation-logs.ndjson')
    const denied = records.find((r) => r.errorCode === 'AccessDenied' && r.eventName === 'LeaveOrganization')
    const created = denied?.userIdentity?.sessionContext?.attributes?.creationDate
    expect(created).toBe('2024-08-02T08:30:00Z')
    expect(normalize(denied as CloudTrailRecord).core?.session_created).toBe(Date.parse(created as string))
    const succeeded = records.find((r) => !r.errorCode && r.userIdentity?.sessionContext?.attributes)
    expect(succeeded?.userIdentity?.sessionContext?.attributes?.creationDate).toBeDefined()
    expect(normalize(succeeded as CloudTrailRecord).core).not.toHaveProperty('session_created')
  })

  it('maps an assumed-role call: action, principal, session issuer, key, source, region, error', () => {
    const record = lines('stratus-red-team-detonation-logs.ndjson')[0] as CloudTrailRecord
    const event = normalize(record)
    expect(event).toMatchObject({
      id: record.eventID,
      side: 'core',
      time: Date.parse(record.eventTime),
      time_ns: 0,
      time_original: record.eventTime,
      core: {
        action: 'ec2:GetPasswordData',
        event_source: 'ec2.amazonaws.com',
        principal_type: 'AssumedRole',
        session_issuer_arn: 'arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role',
        access_key_id: 'ASIANQQHHS551LWULIWD',
        by_nerve: false,
      },
      identity: { role_arn: 'arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role' },
    })
    expect(event.core?.read_only).toBe(true)
  })

  it('carries the Kubernetes identity and the issued key of a Pod Identity AssumeRole', () => {
    const event = normalize(lines('aws-samples-eks-pod-identity.ndjson')[2] as CloudTrailRecord)
    expect(event.identity).toEqual({
      k8s_namespace: 'ns-a',
      k8s_service_account: 'sa1',
      k8s_pod: 'app1',
      k8s_pod_uid: '0cda7f85-c1f9-4dee-b6e9-a0b50c8f3012',
      cluster: 'eksworkshop-eksctl',
      role_arn: 'arn:aws:iam::823571991546:role/eks-pod-s3-read-access-role',
      account_id: '823571991546',
    })
    expect(event.core?.credentials).toEqual({
      access_key_id: 'ASIA37QFXJP5MQOWRZ6Q',
      expires: Date.parse('2024-04-16T15:20:04Z'),
    })
  })

  it('names the instance of a node instance-role session as its host', () => {
    const event = normalize(lines('aws-samples-eks-pod-identity.ndjson')[0] as CloudTrailRecord)
    expect(event.identity).toMatchObject({ host: 'i-064d652934ecf0bfc', session_name: 'i-064d652934ecf0bfc' })
    expect(event.core?.action).toBe('eks-auth:AssumeRoleForPodIdentity')
  })

  it('does not trust a session name that looks like an instance id unless EC2 delivered the credentials', () => {
    const record = lines('aws-samples-eks-pod-identity.ndjson')[0] as CloudTrailRecord
    const ui = record.userIdentity as NonNullable<CloudTrailRecord['userIdentity']>
    expect(ui.sessionContext?.ec2RoleDelivery).toBe('2.0')
    // The attacker's own sts:AssumeRole --role-session-name i-064d652934ecf0bfc: no ec2RoleDelivery.
    const { ec2RoleDelivery: _delivered, ...sessionContext } = ui.sessionContext ?? {}
    const forged = normalize({ ...record, userIdentity: { ...ui, sessionContext } })
    expect(forged.identity.session_name).toBe('i-064d652934ecf0bfc')
    expect(forged.identity.host).toBeUndefined()
  })

  it('hashes records without an eventID, recognizes Insights, and marks nerve’s own calls', () => {
    const noId = lines('panther-analysis-rule-tests.ndjson').find((r) => !r.eventID) as CloudTrailRecord
    expect(normalize(noId).id).toMatch(/^ct-[0-9a-f]{32}$/)
    expect(normalize(noId).id).toBe(normalize({ ...noId }).id)
    const insights = lines('awsdocs-examples.ndjson').filter((r) => isInsightRecord(r))
    expect(insights).toHaveLength(2)
    const own = normalize(lines('stratus-red-team-detonation-logs.ndjson')[0] as CloudTrailRecord, {
      ...ctx,
      isSelfIdentity: (arn) => arn.includes('get-password-data-role'),
    })
    expect(own.core?.by_nerve).toBe(true)
  })

  it('refuses an impossible calendar time', () => {
    const record = {
      ...(lines('awsdocs-examples.ndjson')[0] as CloudTrailRecord),
      eventTime: '2024-02-30T00:00:00Z',
    }
    expect(normalizeCloudTrailRecord(record, ctx)).toEqual({
      ok: false,
      problems: [{ path: '/eventTime', message: 'is not a real calendar time' }],
    })
  })
})

describe('the principal id of a call', () => {
  it('is userIdentity.principalId as the record has it, a federated user’s self-chosen name too, and names no one', () => {
    const records = lines('stratus-red-team-detonation-logs.ndjson')
    const federated = records.find((r) => r.userIdentity?.type === 'FederatedUser') as CloudTrailRecord
    const role = records[0] as CloudTrailRecord
    expect(normalize(role).core?.principal_id).toBe('AROAMLQ9F6KHQ07JKA0WY:aws-go-sdk-1722375070115152000')
    const event = normalize(federated)
    expect(event.core?.principal_id).toBe('742491224508:stratus_red_team')
    // Not an identifier of the agent: identity stays ARN, session and key.
    expect(JSON.stringify(event.identity)).not.toContain('742491224508:stratus_red_team')
    const { principalId: _, ...withoutId } = role.userIdentity as Record<string, unknown>
    expect(normalize({ ...role, userIdentity: withoutId }).core).not.toHaveProperty('principal_id')
  })
})
