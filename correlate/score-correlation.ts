// A 0–100 score for one correlation, with every factor listed so a person can see why:
// rule severity (≤ 50) + Falco priority (≤ 20) + core action risk (≤ 20) + failed attempt (5) +
// proximity in time (≤ 10) + the agent's baseline (−20 … +30, baseline-verdict.ts). The reasons' points
// add up to the score: past 100 (or under 0) a last `cap` reason says by how much it was cut.

import { globToRegExp } from '../runtime/glob.ts'
import type { FalcoPriority, ScoreReason } from '../schemas/types.ts'
import { delegatedExecutions } from './builtin-rule-filters.ts'

export type ScoreInput = {
  severity: number
  priority: FalcoPriority
  action: string
  readOnly: boolean | undefined
  errorCode: string | undefined
  deltaMs: number
  /** What the agent's baseline says about the call (baseline-verdict.ts); none when it is off. */
  baseline?: readonly ScoreReason[]
}

const priorityPoints: Record<FalcoPriority, number> = {
  emergency: 20,
  alert: 20,
  critical: 20,
  error: 15,
  warning: 10,
  notice: 5,
  informational: 0,
  debug: 0,
}

/** Actions that change who may do what, blind detection or mint credentials (core.md §4). */
const criticalActions = [
  'iam:Attach*Policy',
  'iam:Put*Policy',
  'iam:CreatePolicyVersion',
  'iam:SetDefaultPolicyVersion',
  'iam:UpdateAssumeRolePolicy',
  'iam:CreateAccessKey',
  'iam:CreateUser',
  'iam:CreateLoginProfile',
  'iam:UpdateLoginProfile',
  'iam:*RolePermissionsBoundary',
  'iam:DeactivateMFADevice',
  'cloudtrail:StopLogging',
  'cloudtrail:DeleteTrail',
  'cloudtrail:PutEventSelectors',
  'cloudtrail:UpdateTrail',
  'guardduty:*',
  'ec2:DeleteFlowLogs',
  'eks:CreateAccessEntry',
  'eks:AssociateAccessPolicy',
  'kms:ScheduleKeyDeletion',
  'kms:PutKeyPolicy',
  'organizations:LeaveOrganization',
  'organizations:RemoveAccountFromOrganization',
  'route53resolver:DeleteResolverQueryLogConfig',
  'ec2:ModifySnapshotAttribute',
  'ec2:ModifyImageAttribute',
  'rds:Modify*SnapshotAttribute',
  'lambda:AddPermission*',
  'lambda:UpdateFunctionCode*',
  'lambda:UpdateFunctionConfiguration*',
  'lambda:AddLayerVersionPermission*',
  'rolesanywhere:CreateTrustAnchor',
  'rolesanywhere:UpdateTrustAnchor',
  'ec2-instance-connect:Send*SSHPublicKey',
  'ec2:EnableSerialConsoleAccess',
].map(globToRegExp)

/** Credential and data access. */
const highActions = [
  'secretsmanager:*GetSecretValue',
  'ssm:GetParameter*',
  'ec2:GetPasswordData',
  'sts:GetFederationToken',
  'sts:GetSessionToken',
  's3:PutBucket*',
  's3:Delete*',
  'iam:CreateRole',
  'ssm:SendCommand',
  'ssm:StartSession',
  'ec2:ModifyInstanceAttribute',
  'ec2:RunInstances',
  'ec2:AuthorizeSecurityGroup*',
  'bedrock:*',
  'rolesanywhere:CreateProfile',
  'signin:ConsoleLogin',
  // Work handed to another principal's role (runtime-alert-then-delegated-execution).
  ...delegatedExecutions,
].map(globToRegExp)

const deniedCodes = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'Client.UnauthorizedOperation',
  'UnauthorizedAccess',
])

export const isDenied = (errorCode: string | undefined): boolean =>
  errorCode !== undefined && deniedCodes.has(errorCode)

export const isCriticalAction = (action: string): boolean => criticalActions.some((g) => g.test(action))

/**
 * Calls whose harm is in their request, not in their action and target: a bucket opened to others (its
 * policy, ACL, public access block, replication), commands or sessions pushed through SSM, an instance's
 * user data or launch template rewritten. Scored as high, but never discounted as routine either: the
 * baseline keys on action and target, never on the document, the command or the script, so an agent that
 * re-puts its bucket's policy or sends the same harmless command all day would make the one that does harm
 * "routine" (as snapshots and images shared, and function code, are critical already).
 * Work handed to another role (delegatedExecutions) is not here: deploying workloads start the same
 * project, stack, state machine or task all day as their job, and never discounting it revoked a CI
 * runner on every build. Its rule records rather than revokes, and the baseline's target (the project,
 * stack, state machine or task definition) keeps a new one from being routine.
 */
const harmInRequest = new Set([
  's3:PutBucketPolicy',
  's3:PutBucketAcl',
  's3:DeleteBucketPolicy',
  's3:DeletePublicAccessBlock',
  's3:PutBucketPublicAccessBlock',
  's3:PutBucketReplication',
  'ssm:SendCommand',
  'ssm:StartSession',
  'ssm:StartAutomationExecution',
  'ssm:CreateAssociation',
  'ec2:ModifyInstanceAttribute',
  'ec2:CreateLaunchTemplateVersion',
  'ec2:ModifyLaunchTemplate',
])

/**
 * EventBridge Scheduler's universal target calling IAM or STS (`arn:aws:scheduler:::aws-sdk:iam:…`): the
 * schedule's role makes that call, so the schedule is an IAM write by proxy. An agent that points a
 * schedule there every hour must not make the one that attaches AdministratorAccess routine.
 */
export const callsIamByProxy = (target: string | undefined): boolean =>
  target !== undefined && /^arn:aws[a-z-]*:scheduler:::aws-sdk:(?:iam|sts):/i.test(target)

/** A call the behavioural baseline never discounts as routine (baseline-verdict.ts), however often seen. */
export const isNeverRoutine = (action: string, target?: string): boolean =>
  harmInRequest.has(action) || isCriticalAction(action) || callsIamByProxy(target)

function actionRisk(action: string, readOnly: boolean | undefined): { points: number; level: string } {
  if (isCriticalAction(action)) return { points: 20, level: 'critical' }
  if (highActions.some((g) => g.test(action))) return { points: 15, level: 'high' }
  return readOnly ? { points: 3, level: 'read-only' } : { points: 8, level: 'write' }
}

function proximity(deltaMs: number): { points: number; detail: string } {
  const gap = Math.abs(deltaMs)
  const order = deltaMs >= 0 ? 'after' : 'before'
  const seconds = Math.round(gap / 1000)
  const detail = `core event ${seconds}s ${order} the edge event`
  if (gap <= 60_000) return { points: 10, detail }
  if (gap <= 300_000) return { points: 6, detail }
  if (gap <= 900_000) return { points: 3, detail }
  return { points: 0, detail }
}

export function scoreCorrelation(input: ScoreInput): { score: number; reasons: ScoreReason[] } {
  const severity = Math.round(input.severity / 2)
  const risk = actionRisk(input.action, input.readOnly)
  const near = proximity(input.deltaMs)
  const reasons: ScoreReason[] = [
    { factor: 'rule_severity', points: severity, detail: `rule severity ${input.severity}/100` },
    {
      factor: 'edge_priority',
      points: priorityPoints[input.priority],
      detail: `Falco priority ${input.priority}`,
    },
    { factor: 'action_risk', points: risk.points, detail: `${input.action} is ${risk.level}` },
  ]
  if (isDenied(input.errorCode)) {
    reasons.push({
      factor: 'failed_attempt',
      points: 5,
      detail: `${input.action} was denied (${input.errorCode}): an attempt still shows intent`,
    })
  }
  reasons.push({ factor: 'proximity', points: near.points, detail: near.detail })
  if (input.baseline) reasons.push(...input.baseline)
  const total = reasons.reduce((sum, r) => sum + r.points, 0)
  const score = Math.min(100, Math.max(0, total))
  if (score !== total) {
    reasons.push({
      factor: 'cap',
      points: score - total,
      detail: `the reasons add up to ${total}; a score is ${score > 0 ? 'at most 100' : 'at least 0'}`,
    })
  }
  return { score, reasons }
}
