// The built-in rule pack, used when the config has no `correlation.rules`: the AWS cloud ATT&CK matrix
// (credential access, execution, persistence, privilege escalation, defense evasion, discovery, lateral
// movement, exfiltration, impact), each rule with its tactic and technique ids. docs/rules.md is the table.
// Revoking rules are those whose core actions a workload has no routine reason to call; rules over calls a
// workload may make as part of its job (secret reads, model invocations, instance launches) lean on the
// behavioural baseline (agent-baseline.ts) to stay quiet on routine work. Windows come from
// `correlation.window`.
import type { RuleConfig } from '../schemas/types.ts'
import {
  credentialReads,
  credentialSearchRules,
  delegatedExecutions,
  iamPrivilegeChanges,
  outboundRules,
  shellRules,
} from './builtin-rule-filters.ts'

const anyAlert = { min_priority: 'notice' } as const

export const builtinRules: readonly RuleConfig[] = [
  {
    id: 'shell-then-iam-privilege-change',
    description: 'A shell or remote-execution tool in the workload, then an IAM privilege change by it.',
    edge: { rules: shellRules },
    core: { actions: iamPrivilegeChanges },
    severity: 85,
    revoke: true,
    mitre: { tactics: ['TA0004', 'TA0003'], techniques: ['T1098.003', 'T1098'] },
  },
  {
    id: 'outbound-then-iam-privilege-change',
    description: 'An unexpected outbound connection from the workload, then an IAM privilege change by it.',
    edge: { rules: outboundRules },
    core: { actions: iamPrivilegeChanges },
    severity: 80,
    revoke: true,
    mitre: { tactics: ['TA0004', 'TA0003'], techniques: ['T1098.003', 'T1098'] },
  },
  {
    id: 'credential-search-then-secret-access',
    description: 'Credential hunting or metadata-service access, then secrets or SecureString reads.',
    edge: { rules: credentialSearchRules },
    core: { actions: credentialReads },
    severity: 70,
    revoke: false,
    mitre: { tactics: ['TA0006'], techniques: ['T1555.006', 'T1552'] },
  },
  {
    id: 'runtime-alert-then-logging-tampering',
    description: 'Any runtime alert (notice or worse), then CloudTrail, GuardDuty or log tampering.',
    edge: anyAlert,
    core: {
      actions: [
        'cloudtrail:StopLogging',
        'cloudtrail:DeleteTrail',
        'cloudtrail:UpdateTrail',
        'cloudtrail:PutEventSelectors',
        'guardduty:DeleteDetector',
        'guardduty:UpdateDetector',
        'guardduty:CreateIPSet',
        'guardduty:UpdateIPSet',
        'guardduty:Disassociate*',
        'ec2:DeleteFlowLogs',
        'config:StopConfigurationRecorder',
        'config:DeleteDeliveryChannel',
        'logs:DeleteLogGroup',
        'route53resolver:DeleteResolverQueryLogConfig',
        'route53resolver:DisassociateResolverQueryLogConfig',
      ],
    },
    severity: 90,
    revoke: true,
    mitre: { tactics: ['TA0005'], techniques: ['T1562.008'] },
  },
  {
    id: 'runtime-alert-then-new-credentials',
    description:
      'Any runtime alert (notice or worse), then new access keys, users, login profiles, trust anchors or tokens.',
    edge: anyAlert,
    core: {
      actions: [
        'iam:CreateAccessKey',
        'iam:CreateUser',
        'iam:CreateLoginProfile',
        'iam:UpdateLoginProfile',
        'iam:UploadSSHPublicKey',
        'iam:CreateServiceSpecificCredential',
        'sts:GetFederationToken',
        'sts:GetSessionToken',
        'rolesanywhere:CreateTrustAnchor',
        'rolesanywhere:UpdateTrustAnchor',
        'rolesanywhere:CreateProfile',
      ],
    },
    severity: 80,
    revoke: true,
    mitre: {
      tactics: ['TA0003', 'TA0004'],
      techniques: ['T1098.001', 'T1136.003', 'T1550.001'],
    },
  },
  {
    id: 'k8s-api-then-cluster-access-change',
    description:
      'A container talked to the Kubernetes API, then EKS access entries or pod identities changed.',
    edge: {
      rules: ['Contact K8S API Server From Container', 'Kubernetes Client Tool Launched in Container'],
    },
    core: {
      actions: [
        'eks:CreateAccessEntry',
        'eks:AssociateAccessPolicy',
        'eks:CreatePodIdentityAssociation',
        'eks:UpdatePodIdentityAssociation',
        'eks:UpdateClusterConfig',
      ],
    },
    severity: 80,
    revoke: true,
    mitre: { tactics: ['TA0004', 'TA0003'], techniques: ['T1098.003'] },
  },
  {
    id: 'runtime-alert-then-data-exposure',
    description:
      'A runtime alert, then snapshots, images or buckets shared with other accounts or the world.',
    edge: anyAlert,
    core: {
      actions: [
        's3:PutBucketPolicy',
        's3:PutBucketAcl',
        's3:DeleteBucketPolicy',
        's3:DeletePublicAccessBlock',
        's3:PutBucketReplication',
        'ec2:ModifySnapshotAttribute',
        'ec2:ModifyImageAttribute',
        'rds:ModifyDBSnapshotAttribute',
        'rds:ModifyDBClusterSnapshotAttribute',
      ],
      read_only: false,
    },
    severity: 80,
    revoke: true,
    mitre: { tactics: ['TA0010'], techniques: ['T1537'] },
  },
  {
    id: 'shell-then-credential-access',
    description:
      'A shell in the workload, then secrets, SecureString parameters or EC2 passwords read (denied tries count).',
    edge: { rules: shellRules },
    core: { actions: credentialReads },
    severity: 70,
    revoke: true,
    mitre: { tactics: ['TA0006'], techniques: ['T1555.006', 'T1552'] },
  },
  {
    id: 'runtime-alert-then-cloud-admin-command',
    description: 'A runtime alert, then commands or sessions pushed to instances through SSM.',
    edge: anyAlert,
    core: {
      actions: [
        'ssm:SendCommand',
        'ssm:StartSession',
        'ssm:ResumeSession',
        'ssm:StartAutomationExecution',
        'ssm:CreateAssociation',
      ],
    },
    severity: 75,
    revoke: true,
    mitre: { tactics: ['TA0002', 'TA0008'], techniques: ['T1651', 'T1021.007'] },
  },
  {
    id: 'runtime-alert-then-instance-access-keys',
    description: 'A runtime alert, then SSH keys pushed through EC2 Instance Connect or the serial console.',
    edge: anyAlert,
    core: {
      actions: [
        'ec2-instance-connect:SendSSHPublicKey',
        'ec2-instance-connect:SendSerialConsoleSSHPublicKey',
        'ec2:EnableSerialConsoleAccess',
      ],
    },
    severity: 80,
    revoke: true,
    mitre: { tactics: ['TA0008', 'TA0003'], techniques: ['T1021.004', 'T1098.004'] },
  },
  {
    id: 'runtime-alert-then-user-data-change',
    description:
      'A runtime alert, then an instance attribute (user data: code run at boot) or launch template changed.',
    edge: anyAlert,
    core: {
      actions: ['ec2:ModifyInstanceAttribute', 'ec2:CreateLaunchTemplateVersion', 'ec2:ModifyLaunchTemplate'],
    },
    severity: 75,
    revoke: true,
    mitre: { tactics: ['TA0002', 'TA0003'], techniques: ['T1059.009'] },
  },
  {
    id: 'runtime-alert-then-instance-launch',
    description: 'A runtime alert, then instances launched (tried or done): compute for the attacker.',
    edge: anyAlert,
    core: { actions: ['ec2:RunInstances', 'ec2:RequestSpotInstances', 'ec2:CreateFleet'] },
    severity: 65,
    revoke: false,
    mitre: { tactics: ['TA0005', 'TA0040'], techniques: ['T1578.002', 'T1496.001'] },
  },
  {
    id: 'runtime-alert-then-instance-discovery',
    description: 'A runtime alert, then instance attributes (user data) or launch template data read.',
    edge: anyAlert,
    core: {
      actions: ['ec2:DescribeInstanceAttribute', 'ec2:GetLaunchTemplateData', 'ec2:GetConsoleOutput'],
    },
    severity: 55,
    revoke: false,
    mitre: { tactics: ['TA0007', 'TA0006'], techniques: ['T1580', 'T1552.005'] },
  },
  {
    id: 'runtime-alert-then-firewall-opening',
    description: 'A runtime alert, then security group rules opened.',
    edge: anyAlert,
    core: {
      actions: [
        'ec2:AuthorizeSecurityGroupIngress',
        'ec2:AuthorizeSecurityGroupEgress',
        'ec2:ModifySecurityGroupRules',
      ],
    },
    severity: 70,
    revoke: false,
    mitre: { tactics: ['TA0005'], techniques: ['T1562.007'] },
  },
  {
    id: 'runtime-alert-then-data-destruction',
    description:
      'A runtime alert, then keys scheduled for deletion, disabled or re-policied, or backups deleted.',
    edge: anyAlert,
    core: {
      actions: [
        'kms:ScheduleKeyDeletion',
        'kms:DisableKey',
        'kms:PutKeyPolicy',
        'ec2:DeleteSnapshot',
        'rds:DeleteDBSnapshot',
        'rds:DeleteDBClusterSnapshot',
        'backup:DeleteRecoveryPoint',
        'backup:DeleteBackupVault',
      ],
    },
    severity: 80,
    revoke: true,
    mitre: { tactics: ['TA0040'], techniques: ['T1485'] },
  },
  {
    id: 'runtime-alert-then-model-abuse',
    description: 'A runtime alert, then foundation models invoked or model access enabled (LLMjacking).',
    edge: anyAlert,
    core: {
      actions: [
        'bedrock:InvokeModel*',
        'bedrock:Converse*',
        'bedrock:PutUseCaseForModelAccess',
        'bedrock:PutFoundationModelEntitlement',
        'bedrock:CreateFoundationModelAgreement',
      ],
    },
    severity: 60,
    revoke: false,
    mitre: { tactics: ['TA0040'], techniques: ['T1496.004'] },
  },
  {
    id: 'runtime-alert-then-serverless-backdoor',
    description: 'A runtime alert, then Lambda code, layers, permissions or function URLs changed.',
    edge: anyAlert,
    core: {
      actions: [
        'lambda:AddPermission*',
        'lambda:UpdateFunctionCode*',
        'lambda:UpdateFunctionConfiguration*',
        'lambda:PublishLayerVersion*',
        'lambda:AddLayerVersionPermission*',
        'lambda:CreateFunctionUrlConfig*',
        'lambda:CreateFunction*',
      ],
    },
    severity: 80,
    revoke: true,
    mitre: { tactics: ['TA0003', 'TA0002'], techniques: ['T1648', 'T1098'] },
  },
  {
    id: 'runtime-alert-then-organization-change',
    description: 'A runtime alert, then the account leaving (or being removed from) its AWS Organization.',
    edge: anyAlert,
    core: {
      actions: [
        'organizations:LeaveOrganization',
        'organizations:RemoveAccountFromOrganization',
        'organizations:DeleteOrganization',
      ],
    },
    severity: 90,
    revoke: true,
    mitre: { tactics: ['TA0005'], techniques: ['T1666'] },
  },
  {
    id: 'runtime-alert-then-console-login',
    description: 'A runtime alert, then a console sign-in by the same identity: a workload never signs in.',
    edge: anyAlert,
    core: { actions: ['signin:ConsoleLogin'] },
    severity: 70,
    revoke: false,
    mitre: { tactics: ['TA0001', 'TA0003'], techniques: ['T1078.004'] },
  },
  {
    // ATT&CK T1531 (Account Access Removal). Keys deactivated or deleted by nerve's own revoker are
    // revokes and never reach a rule (revoke-confirmations.ts); by the watched agent they are impact.
    id: 'runtime-alert-then-access-key-removal',
    description:
      'A runtime alert (warning or worse), then access keys deactivated or deleted by the workload (T1531).',
    edge: { min_priority: 'warning' },
    core: { actions: ['iam:UpdateAccessKey', 'iam:DeleteAccessKey'], read_only: false },
    severity: 75,
    revoke: true,
  },
  {
    // The call the agent makes itself when the harmful one is made by another principal's role (a
    // CloudFormation IAM write is assumed-role/<stack role>/AWSCloudFormation's, not the agent's).
    // Records, never revokes: CI runners, deployers and task launchers make these calls as their job,
    // after alerts of their own (a package install on every build). T1610 for the ECS tasks and
    // services, T1053 for schedules, T1546 for event rule targets (both also persistence).
    id: 'runtime-alert-then-delegated-execution',
    description:
      "A runtime alert, then code run or infrastructure changed with another principal's rights: stacks, stack sets, state machines, builds, tasks, schedules, event targets, jobs, pipelines.",
    edge: anyAlert,
    core: { actions: delegatedExecutions },
    severity: 75,
    revoke: false,
    mitre: {
      tactics: ['TA0004', 'TA0005', 'TA0002', 'TA0003'],
      techniques: ['T1548.005', 'T1548', 'T1610', 'T1053', 'T1546'],
    },
  },
]
