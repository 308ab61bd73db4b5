// Delegation escapes correlation unless the delegating call is named: after a shell alert the agent creates
// a CloudFormation stack with a service role, and the IAM write is then made by the stack's role
// (assumed-role/cfn-admin/AWSCloudFormation, invokedBy cloudformation.amazonaws.com), not by the agent.
// The built-in rule runtime-alert-then-delegated-execution pairs the alert with the agent's own call.
// Records: Stratus Red Team's iam-backdoor-role record (line 293 of the detonation logs, DataDog/
// stratus-red-team, Apache-2.0) with its call replaced by each delegating call and its request parameters
// as CloudTrail records them for CloudFormation, Step Functions, CodeBuild, ECS, EventBridge Scheduler,
// EventBridge, Glue, SageMaker, Batch and CodePipeline (lower-camel API members, nested as the API nests
// them); the Falco website's shell alert.
import { describe, expect, it } from 'vitest'
import { builtinRules } from '../../../correlate/builtin-rules.ts'
import { isNeverRoutine } from '../../../correlate/score-correlation.ts'
import { detonation, stratusRecords } from './stratus-detonations.ts'

const ruleId = 'runtime-alert-then-delegated-execution'
const account = '751203476945'

/** The Stratus caller's record of `action` (service:EventName), with its own parameters and response. */
function call(action: string, requestParameters: object, responseElements: object | null = null) {
  const [service, eventName] = action.split(':') as [string, string]
  const [record] = stratusRecords(293, 293) as [Record<string, unknown>]
  return {
    ...record,
    eventID: `0b8c5f7e-delegated-${eventName}`,
    eventSource: `${service}.amazonaws.com`,
    eventName,
    requestParameters,
    responseElements,
    tlsDetails: {
      ...(record.tlsDetails as object),
      clientProvidedHostHeader: `${service}.us-east-1.amazonaws.com`,
    },
  }
}

const stackRole = `arn:aws:iam::${account}:role/cfn-admin`
const createStack = call(
  'cloudformation:CreateStack',
  {
    stackName: 'backup-nightly',
    templateURL: 'https://s3.amazonaws.com/agent-bucket/t.yaml',
    roleARN: stackRole,
    capabilities: ['CAPABILITY_NAMED_IAM'],
  },
  {
    stackId: `arn:aws:cloudformation:us-east-1:${account}:stack/backup-nightly/1b2c3d4e-0000-11ef-9a5c-0affe8b1c2d3`,
  },
)

const universalIamTarget = 'arn:aws:scheduler:::aws-sdk:iam:attachRolePolicy'
const smRole = `arn:aws:iam::${account}:role/sagemaker-admin`

/** Each delegating call of the rule, as CloudTrail records its request parameters. */
const calls: [string, object][] = [
  [
    'cloudformation:UpdateStack',
    { stackName: 'backup-nightly', usePreviousTemplate: false, roleARN: stackRole },
  ],
  [
    'cloudformation:CreateChangeSet',
    { stackName: 'backup-nightly', changeSetName: 'grant', changeSetType: 'UPDATE', roleARN: stackRole },
  ],
  ['cloudformation:ExecuteChangeSet', { stackName: 'backup-nightly', changeSetName: 'grant' }],
  [
    'cloudformation:CreateStackSet',
    {
      stackSetName: 'org-backup',
      administrationRoleARN: `arn:aws:iam::${account}:role/AWSCloudFormationStackSetAdministrationRole`,
    },
  ],
  ['cloudformation:UpdateStackSet', { stackSetName: 'org-backup', usePreviousTemplate: true }],
  [
    'states:StartExecution',
    { stateMachineArn: `arn:aws:states:us-east-1:${account}:stateMachine:cleanup`, input: '{}' },
  ],
  ['codebuild:StartBuild', { projectName: 'release', buildspecOverride: 'version: 0.2' }],
  ['codebuild:StartBuildBatch', { projectName: 'release' }],
  [
    'ecs:RunTask',
    {
      cluster: 'default',
      taskDefinition: 'maintenance:3',
      overrides: { taskRoleArn: `arn:aws:iam::${account}:role/ops-admin` },
    },
  ],
  ['ecs:StartTask', { cluster: 'default', taskDefinition: 'maintenance:3', containerInstances: ['i-0abc'] }],
  // A stack set made long before (its administration role's rights), deployed to this account now.
  [
    'cloudformation:CreateStackInstances',
    { stackSetName: 'org-backup', accounts: [account], regions: ['us-east-1'] },
  ],
  [
    'cloudformation:UpdateStackInstances',
    { stackSetName: 'org-backup', accounts: [account], regions: ['us-east-1'] },
  ],
  [
    'ecs:CreateService',
    { cluster: 'default', serviceName: 'maintenance-svc', taskDefinition: 'maintenance:3', desiredCount: 1 },
  ],
  ['ecs:UpdateService', { cluster: 'default', service: 'maintenance-svc', desiredCount: 2 }],
  // The schedule's role makes the IAM write itself through a universal target: no function, no task.
  [
    'scheduler:CreateSchedule',
    {
      name: 'nightly-cleanup',
      groupName: 'default',
      scheduleExpression: 'at(2026-03-01T00:05:00)',
      flexibleTimeWindow: { mode: 'OFF' },
      target: {
        arn: universalIamTarget,
        roleArn: `arn:aws:iam::${account}:role/scheduler-admin`,
        input: `{"RoleName":"stratus-red-team-backdoor-r-role","PolicyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}`,
      },
    },
  ],
  [
    'scheduler:UpdateSchedule',
    {
      name: 'nightly-cleanup',
      scheduleExpression: 'rate(1 hour)',
      flexibleTimeWindow: { mode: 'OFF' },
      target: { arn: universalIamTarget, roleArn: `arn:aws:iam::${account}:role/scheduler-admin` },
    },
  ],
  [
    'events:PutTargets',
    {
      rule: 'on-any-login',
      targets: [
        {
          id: '1',
          arn: `arn:aws:states:us-east-1:${account}:stateMachine:cleanup`,
          roleArn: `arn:aws:iam::${account}:role/events-admin`,
        },
      ],
    },
  ],
  [
    'glue:CreateJob',
    {
      name: 'etl-admin',
      role: `arn:aws:iam::${account}:role/glue-admin`,
      command: { name: 'pythonshell', scriptLocation: 's3://agent-bucket/x.py' },
    },
  ],
  [
    'glue:UpdateJob',
    {
      jobName: 'etl-nightly',
      jobUpdate: { role: `arn:aws:iam::${account}:role/glue-admin`, command: { name: 'glueetl' } },
    },
  ],
  ['glue:StartJobRun', { jobName: 'etl-nightly' }],
  [
    'sagemaker:CreateProcessingJob',
    {
      processingJobName: 'proc-2026-03-01-000500',
      roleArn: smRole,
      appSpecification: { imageUri: `${account}.dkr.ecr.us-east-1.amazonaws.com/agent:latest` },
    },
  ],
  [
    'sagemaker:CreateTrainingJob',
    {
      trainingJobName: 'train-2026-03-01-000500',
      roleArn: smRole,
      algorithmSpecification: { trainingImage: `${account}.dkr.ecr.us-east-1.amazonaws.com/agent:latest` },
    },
  ],
  ['batch:SubmitJob', { jobName: 'run-8f3a2c', jobQueue: 'default', jobDefinition: 'maintenance-job:4' }],
  ['codepipeline:StartPipelineExecution', { name: 'release-pipeline' }],
]

describe('delegated execution after a runtime alert', () => {
  it('pairs a shell with the stack the agent creates with a service role, as privilege escalation', () => {
    const { correlations } = detonation([createStack])
    expect(correlations.map((c) => [c.rule.id, c.core.action, c.core.event_id])).toEqual([
      [ruleId, 'cloudformation:CreateStack', createStack.eventID],
    ])
    const [found] = correlations
    // Recorded, not revoked: deploying workloads make these calls as their job (delegated-execution-routine).
    expect(found?.rule.revoke).toBe(false)
    expect(found?.rule.mitre?.techniques.map((t) => `${t.id} ${t.name}`)).toEqual([
      'T1548.005 Temporary Elevated Cloud Access',
      'T1548 Abuse Elevation Control Mechanism',
      'T1610 Deploy Container',
      'T1053 Scheduled Task/Job',
      'T1546 Event Triggered Execution',
    ])
    expect(found?.rule.mitre?.tactics.map((t) => t.name)).toEqual([
      'Privilege Escalation',
      'Defense Evasion',
      'Execution',
      'Persistence',
    ])
    expect(found?.reasons.find((r) => r.factor === 'action_risk')?.detail).toBe(
      'cloudformation:CreateStack is high',
    )
  })

  it('lets the baseline judge them like other calls: routine on a target the agent uses, new otherwise', () => {
    for (const action of ['cloudformation:CreateStack', ...calls.map(([a]) => a)])
      expect(isNeverRoutine(action), action).toBe(false)
    const targets = [createStack, ...calls.map(([action, params]) => call(action, params))].map(
      (record) => detonation([record]).correlations[0]?.core.target,
    )
    expect(targets).toEqual([
      'backup-nightly',
      'backup-nightly',
      'backup-nightly',
      'backup-nightly',
      'org-backup',
      'org-backup',
      `arn:aws:states:us-east-1:${account}:stateMachine:cleanup`,
      'release',
      'release',
      'maintenance:3',
      'maintenance:3',
      'org-backup',
      'org-backup',
      'maintenance:3',
      'maintenance-svc',
      // What the schedule or rule runs, not its own name: re-pointing a routine one is new.
      universalIamTarget,
      universalIamTarget,
      `arn:aws:states:us-east-1:${account}:stateMachine:cleanup`,
      'etl-admin',
      'etl-nightly',
      'etl-nightly',
      // A job's name is new every run: the role it runs as is what routine jobs share.
      smRole,
      smRole,
      'maintenance-job:4',
      'release-pipeline',
    ])
  })

  it.each(calls)('pairs a shell with %s', (action, params) => {
    const record = call(action, params)
    const found = detonation([record]).correlations
    expect(found.map((c) => [c.rule.id, c.core.action])).toEqual([[ruleId, action]])
  })

  it('names every delegating call of the rule in the test', () => {
    const rule = builtinRules.find((r) => r.id === ruleId)
    expect(rule?.core.actions).toEqual(['cloudformation:CreateStack', ...calls.map(([action]) => action)])
  })

  it('leaves reads of the same services alone', () => {
    const reads = [
      'cloudformation:DescribeStacks',
      'states:DescribeExecution',
      'ecs:DescribeTasks',
      'scheduler:GetSchedule',
      'events:ListTargetsByRule',
      'glue:GetJobRun',
      'sagemaker:DescribeTrainingJob',
    ]
    for (const action of reads) {
      const record = { ...call(action, {}), readOnly: true }
      expect(detonation([record]).correlations, action).toEqual([])
    }
  })
})
