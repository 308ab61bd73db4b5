// The built-in rule pack, used when the config has no `correlation.rules`. Edge filters name real
// Falco rules (falcosecurity/rules: falco_rules.yaml, falco-incubating_rules.yaml, falco-sandbox_rules.yaml);
// core filters name the high-risk CloudTrail actions of Sigma, Elastic detection-rules and Stratus Red Team
// (../shared/notes/core.md §4). Windows come from `correlation.window`.
import type { RuleConfig } from '../schemas/types.ts'

const shellRules = [
  'Terminal shell in container',
  'Run shell untrusted',
  'Redirect STDOUT/STDIN to Network Connection in Container',
  'Netcat Remote Code Execution in Container',
  'Reverse Shell from Web Server',
  'Launch Suspicious Network Tool in Container',
  'Kubernetes Client Tool Launched in Container',
]

const outboundRules = [
  'Unexpected outbound connection destination',
  'Outbound Connection to C2 Servers',
  'Interpreted procs outbound network activity',
  'Network Connection outside Local Subnet',
  'Detect outbound connections to common miner pool ports',
  'Unexpected UDP Traffic',
  'Disallowed SSH Connection Non Standard Port',
]

const credentialSearchRules = [
  'Find AWS Credentials',
  'Search Private Keys or Passwords',
  'Read sensitive file untrusted',
  'Read sensitive file trusted after startup',
  'Read environment variable from /proc files',
  'Contact EC2 Instance Metadata Service From Container',
  'Contact cloud metadata service from container',
]

const iamPrivilegeChanges = [
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

export const builtinRules: readonly RuleConfig[] = [
  {
    id: 'shell-then-iam-privilege-change',
    description: 'A shell or remote-execution tool in the workload, then an IAM privilege change by it.',
    edge: { rules: shellRules },
    core: { actions: iamPrivilegeChanges },
    severity: 85,
    revoke: true,
  },
  {
    id: 'outbound-then-iam-privilege-change',
    description: 'An unexpected outbound connection from the workload, then an IAM privilege change by it.',
    edge: { rules: outboundRules },
    core: { actions: iamPrivilegeChanges },
    severity: 80,
    revoke: true,
  },
  {
    id: 'credential-search-then-secret-access',
    description: 'Credential hunting or metadata-service access, then secrets or SecureString reads.',
    edge: { rules: credentialSearchRules },
    core: {
      actions: [
        'secretsmanager:GetSecretValue',
        'secretsmanager:BatchGetSecretValue',
        'ssm:GetParameter',
        'ssm:GetParameters',
        'ssm:GetParametersByPath',
        'ec2:GetPasswordData',
      ],
    },
    severity: 70,
    revoke: false,
  },
  {
    id: 'runtime-alert-then-logging-tampering',
    description: 'Any runtime alert (notice or worse), then CloudTrail, GuardDuty or log tampering.',
    edge: { min_priority: 'notice' },
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
      ],
    },
    severity: 90,
    revoke: true,
  },
  {
    id: 'runtime-alert-then-new-credentials',
    description:
      'Any runtime alert (notice or worse), then new access keys, users, login profiles or tokens.',
    edge: { min_priority: 'notice' },
    core: {
      actions: [
        'iam:CreateAccessKey',
        'iam:CreateUser',
        'iam:CreateLoginProfile',
        'iam:UpdateLoginProfile',
        'sts:GetFederationToken',
        'sts:GetSessionToken',
      ],
    },
    severity: 80,
    revoke: true,
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
  },
  {
    id: 'runtime-alert-then-data-exposure',
    description: 'A runtime alert (warning or worse), then data shared out, exposed or keys destroyed.',
    edge: { min_priority: 'warning' },
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
        'kms:ScheduleKeyDeletion',
        'kms:DisableKey',
        'kms:PutKeyPolicy',
      ],
      read_only: false,
    },
    severity: 75,
    revoke: false,
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
]
