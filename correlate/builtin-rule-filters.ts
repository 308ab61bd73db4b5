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
