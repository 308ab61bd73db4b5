import { readFileSync } from 'node:fs'
import AjvModule from 'ajv'
import addFormatsModule from 'ajv-formats'
import { describe, expect, it } from 'vitest'
import { compileSchema } from '../../../schemas/validators.ts'
import { buildRevokeEvent, type RecommendedAction } from '../../../sinks/revoke-payload.ts'
import { revokeDecisionId } from '../../../sinks/revoke-policy.ts'
import { makeCorrelation } from './correlation-fixture.ts'

// The CloudEvents 1.0.2 JSON Schema (draft-07), copied verbatim into tests/fixtures/cloudevents.
const Ajv = AjvModule as unknown as typeof AjvModule.default
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default
const cloudEventsSchema = JSON.parse(
  readFileSync(new URL('../../fixtures/cloudevents/cloudevents.json', import.meta.url), 'utf8'),
)
const draft07 = new Ajv({ allErrors: true, strict: false })
addFormats(draft07)
const isCloudEvent = draft07.compile(cloudEventsSchema)
const isRevokeWebhook = compileSchema('revoke-webhook.schema.json')

const decidedAt = Date.UTC(2026, 10, 25, 16, 2, 0)
const decisionId = revokeDecisionId('inc-data-cleaner-0')

describe('revoke webhook body', () => {
  const event = buildRevokeEvent(makeCorrelation(0), decisionId, decidedAt)
  const wire = JSON.parse(JSON.stringify(event))

  it('is a valid CloudEvent by the CloudEvents 1.0.2 JSON Schema, and by ours', () => {
    expect(isCloudEvent(wire), JSON.stringify(isCloudEvent.errors)).toBe(true)
    expect(isRevokeWebhook(wire), JSON.stringify(isRevokeWebhook.errors)).toBe(true)
  })

  it('follows the spec rules the schema does not check', () => {
    expect(wire.specversion).toBe('1.0')
    expect('data_base64' in wire).toBe(false)
    const standard = [
      'id',
      'source',
      'specversion',
      'type',
      'datacontenttype',
      'dataschema',
      'subject',
      'time',
    ]
    for (const name of Object.keys(wire).filter((k) => !standard.includes(k) && k !== 'data')) {
      expect(name).toMatch(/^[a-z0-9]{1,20}$/)
    }
  })

  it('carries the idempotency key as id, the agent as subject, and the decision time', () => {
    expect(wire).toMatchObject({
      id: decisionId,
      subject: 'data-cleaner',
      type: 'dev.nerve.revoke.requested',
      time: '2026-11-25T16:02:00.000Z',
      data: {
        idempotency_key: decisionId,
        incident: { id: 'inc-data-cleaner-0' },
        agent: { id: 'data-cleaner', principal: expect.stringContaining('assumed-role/data-cleaner') },
        correlation: { id: makeCorrelation(0).id },
      },
    })
  })

  it('recommends revoking the role sessions as AWS does, and isolating then deleting the pod', () => {
    const types = event.data.recommended_actions.map((a) => a.type)
    expect(types).toEqual(['aws.iam.revoke_role_sessions', 'kubernetes.isolate_pod', 'kubernetes.delete_pod'])
    expect(event.data.recommended_actions[0]).toEqual({
      type: 'aws.iam.revoke_role_sessions',
      api: 'iam:PutRolePolicy',
      role_name: 'data-cleaner',
      role_arn: 'arn:aws:iam::123456789012:role/data-cleaner',
      account_id: '123456789012',
      policy_name: 'AWSRevokeOlderSessions',
      policy_document: {
        Version: '2012-10-17',
        Statement: {
          Effect: 'Deny',
          Action: '*',
          Resource: '*',
          Condition: { DateLessThan: { 'aws:TokenIssueTime': '2026-11-25T16:02:00.000Z' } },
        },
      },
    })
    expect(event.data.recommended_actions[1]).toEqual({
      type: 'kubernetes.isolate_pod',
      namespace: 'agents',
      pod: 'data-cleaner-7f9c',
      cluster: 'prod-eu',
    })
  })
})

describe('recommended actions by what is known', () => {
  const actionsFor = (identity: Record<string, string>, principal: string): RecommendedAction[] => {
    const base = makeCorrelation(0)
    const c = { ...base, agent: { ...base.agent, identity }, core: { ...base.core, principal } }
    return buildRevokeEvent(c, decisionId, decidedAt).data.recommended_actions
  }

  it('derives the role from an assumed-role session ARN alone', () => {
    const actions = actionsFor({}, 'arn:aws:sts::123456789012:assumed-role/etl-agent/i-0abc')
    expect(actions).toMatchObject([{ type: 'aws.iam.revoke_role_sessions', role_name: 'etl-agent' }])
  })

  it('deactivates a long-term access key (with its user), never a temporary one', () => {
    const user = 'arn:aws:iam::123456789012:user/ci/deployer'
    expect(actionsFor({ access_key_id: 'AKIAIOSFODNN7EXAMPLE', principal_arn: user }, user)).toEqual([
      {
        type: 'aws.iam.deactivate_access_key',
        api: 'iam:UpdateAccessKey',
        access_key_id: 'AKIAIOSFODNN7EXAMPLE',
        user_name: 'deployer',
        status: 'Inactive',
      },
    ])
    expect(actionsFor({ access_key_id: 'ASIAY34FZKBOKMUTVV7A' }, user)).toEqual([])
  })

  it('never recommends revoking a service-linked role', () => {
    const slr = 'arn:aws:iam::123456789012:role/aws-service-role/eks.amazonaws.com/AWSServiceRoleForAmazonEKS'
    expect(actionsFor({ role_arn: slr }, slr)).toEqual([])
  })
})
