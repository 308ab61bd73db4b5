// The filter lists the built-in rule pack shares. Edge lists name real Falco rules (falcosecurity/rules:
// falco_rules.yaml, falco-incubating_rules.yaml, falco-sandbox_rules.yaml); core lists name CloudTrail
// actions (service:EventName) from Stratus Red Team, Elastic detection-rules, Sigma and
// ../shared/notes/core.md §4. Lambda event names carry an API version suffix
// (`AddPermission20150331v2`), hence the trailing `*`.

/** A shell or a remote-execution tool inside the workload. */
export const shellRules = [
  'Terminal shell in container',
  'Run shell untrusted',
  'Redirect STDOUT/STDIN to Network Connection in Container',
  'Netcat Remote Code Execution in Container',
  'Reverse Shell from Web Server',
  'Launch Suspicious Network Tool in Container',
  'Kubernetes Client Tool Launched in Container',
]

export const outboundRules = [
  'Unexpected outbound connection destination',
  'Outbound Connection to C2 Servers',
  'Interpreted procs outbound network activity',
  'Network Connection outside Local Subnet',
  'Detect outbound connections to common miner pool ports',
  'Unexpected UDP Traffic',
  'Disallowed SSH Connection Non Standard Port',
]

export const credentialSearchRules = [
  'Find AWS Credentials',
  'Search Private Keys or Passwords',
  'Read sensitive file untrusted',
  'Read sensitive file trusted after startup',
  'Read environment variable from /proc files',
  'Contact EC2 Instance Metadata Service From Container',
  'Contact cloud metadata service from container',
]

/** Changes to who may do what: escalation and persistence through roles and policies. */
export const iamPrivilegeChanges = [
  'iam:Attach*Policy',
  'iam:Put*Policy',
  'iam:CreatePolicyVersion',
  'iam:SetDefaultPolicyVersion',
  'iam:UpdateAssumeRolePolicy',
  'iam:CreateRole',
  'iam:*RolePermissionsBoundary',
  'iam:AddUserToGroup',
  'ec2:AssociateIamInstanceProfile',
  'ec2:ReplaceIamInstanceProfileAssociation',
]

/** Secrets and parameters read back, and Windows passwords decrypted from EC2. */
export const credentialReads = [
  'secretsmanager:GetSecretValue',
  'secretsmanager:BatchGetSecretValue',
  'ssm:GetParameter',
  'ssm:GetParameters',
  'ssm:GetParametersByPath',
  'ec2:GetPasswordData',
]

/**
 * Calls that hand work to another principal's role: a stack's service role (or the stack set
 * administration role), a state machine's, a build project's, a task's or service's, a schedule's or
 * event rule target's, a Glue job's, a SageMaker job's, a Batch job's, a pipeline's. The harmful call is
 * then the role's (a schedule's universal target `arn:aws:scheduler:::aws-sdk:iam:attachRolePolicy` makes
 * the IAM write itself); these are the agent's own. iam:PassRole, which they need, is a permission
 * CloudTrail never logs as an event, and states:StartSyncExecution is not logged. SSM, Lambda and EC2
 * launches have rules of their own.
 */
export const delegatedExecutions = [
  'cloudformation:CreateStack',
  'cloudformation:UpdateStack',
  'cloudformation:CreateChangeSet',
  'cloudformation:ExecuteChangeSet',
  'cloudformation:CreateStackSet',
  'cloudformation:UpdateStackSet',
  'states:StartExecution',
  'codebuild:StartBuild',
  'codebuild:StartBuildBatch',
  'ecs:RunTask',
  'ecs:StartTask',
  // A stack set made long before, deployed to (more) accounts or regions now.
  'cloudformation:CreateStackInstances',
  'cloudformation:UpdateStackInstances',
  'ecs:CreateService',
  'ecs:UpdateService',
  'scheduler:CreateSchedule',
  'scheduler:UpdateSchedule',
  'events:PutTargets',
  'glue:CreateJob',
  'glue:UpdateJob',
  'glue:StartJobRun',
  'sagemaker:CreateProcessingJob',
  'sagemaker:CreateTrainingJob',
  'batch:SubmitJob',
  'codepipeline:StartPipelineExecution',
]
