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

  it('names the key that comes first in its list, whatever order the request gives its keys in', () => {
    // AttachRolePolicy gives policyArn before roleName: the role is what the call touched.
    const attach = at(298) as Record<string, unknown>
    expect(Object.keys(attach)).toEqual(['policyArn', 'roleName'])
    expect(requestTarget(attach, [])).toBe('stratus-red-team-malicious-iam-role')
    const reversed = Object.fromEntries(Object.entries(attach).reverse())
    expect(requestTarget(reversed, [])).toBe('stratus-red-team-malicious-iam-role')
    // An empty or non-string value is passed over for the next key present.
    expect(requestTarget({ path: '/x', name: '', roleName: 7 }, [])).toBe('/x')
  })

  it('names the stack, project, state machine or task definition that work is handed to', () => {
    expect(requestTarget({ stackName: 'backup-nightly', templateURL: 'https://s3/t.yaml' }, [])).toBe(
      'backup-nightly',
    )
    expect(requestTarget({ changeSetName: 'grant', stackName: 'backup-nightly' }, [])).toBe('backup-nightly')
    expect(requestTarget({ stackSetName: 'org-backup', usePreviousTemplate: true }, [])).toBe('org-backup')
    expect(requestTarget({ projectName: 'release', buildspecOverride: 'version: 0.2' }, [])).toBe('release')
    expect(requestTarget({ cluster: 'default', taskDefinition: 'maintenance:3' }, [])).toBe('maintenance:3')
    // An execution's name is new every run: the state machine it runs is what the call touched.
    const machine = 'arn:aws:states:us-east-1:609418236337:stateMachine:cleanup'
    expect(requestTarget({ stateMachineArn: machine, name: 'run-8f3a2c', input: '{}' }, [])).toBe(machine)
  })

  it('names what a schedule or an event rule runs, not the schedule or rule', () => {
    const universal = 'arn:aws:scheduler:::aws-sdk:iam:attachRolePolicy'
    const role = 'arn:aws:iam::609418236337:role/scheduler-admin'
    const schedule = {
      name: 'nightly',
      scheduleExpression: 'rate(1 hour)',
      target: { arn: universal, roleArn: role },
    }
    expect(requestTarget(schedule, [])).toBe(universal)
    const machine = 'arn:aws:states:us-east-1:609418236337:stateMachine:cleanup'
    const rule = { rule: 'on-login', targets: [{ id: '1', arn: machine, roleArn: role }] }
    expect(requestTarget(rule, [])).toBe(machine)
    const two = {
      rule: 'on-login',
      targets: [
        { id: '1', arn: machine },
        { id: '2', arn: universal },
      ],
    }
    expect(requestTarget(two, [])).toBe(`${machine} (+1)`)
    // Shapes that only look alike keep their own targets: SSM's tag targets and a session's instance.
    const sendCommand = { documentName: 'AWS-RunShellScript', targets: [{ key: 'tag:app', values: ['x'] }] }
    expect(requestTarget(sendCommand, ['arn:aws:ssm:us-east-1::document/AWS-RunShellScript'])).toBe(
      'arn:aws:ssm:us-east-1::document/AWS-RunShellScript',
    )
    expect(requestTarget({ target: 'i-0abc' }, [])).toBeUndefined()
  })

  it('names the job definition, job, service or execution role that work is handed to', () => {
    // A Batch run's name is new every run; its definition is what it runs.
    const submit = { jobName: 'run-8f3a2c', jobQueue: 'default', jobDefinition: 'maintenance-job:4' }
    expect(requestTarget(submit, [])).toBe('maintenance-job:4')
    expect(requestTarget({ jobName: 'etl-nightly' }, [])).toBe('etl-nightly')
    expect(requestTarget({ name: 'etl-admin', role: 'arn:aws:iam::1:role/glue-admin' }, [])).toBe('etl-admin')
    const service = { cluster: 'default', serviceName: 'svc', taskDefinition: 'maintenance:3' }
    expect(requestTarget(service, [])).toBe('maintenance:3')
    expect(requestTarget({ cluster: 'default', service: 'svc', desiredCount: 2 }, [])).toBe('svc')
    const role = 'arn:aws:iam::609418236337:role/sagemaker-admin'
    expect(requestTarget({ trainingJobName: 'train-1', roleArn: role }, [])).toBe(role)
    expect(requestTarget({ processingJobName: 'proc-1', roleArn: role }, [])).toBe(role)
  })

  it('falls back to the first resource ARN, bounds the length, and names nothing when nothing is named', () => {
    expect(requestTarget(null, ['arn:aws:s3:::bucket'])).toBe('arn:aws:s3:::bucket')
    expect(requestTarget({ secretId: 'x'.repeat(1000) }, [])).toHaveLength(256)
    expect(requestTarget(null, [])).toBeUndefined()
  })
})
