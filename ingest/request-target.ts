// The one resource a CloudTrail request names, read from its requestParameters: what the behavioural
// baseline remembers per agent ("resource never touched before", "N distinct secrets in M minutes").
// Pure. The keys are those the AWS APIs use; the first one present wins. Values are the watched agent's
// own text: bounded in length, never interpreted.

const targetKeys = [
  'secretId',
  // Before `name`: a Step Functions execution's name is new every run, its state machine is what it runs.
  'stateMachineArn',
  'name',
  'path',
  'bucketName',
  'roleName',
  'userName',
  'policyArn',
  'functionName',
  'layerName',
  'keyId',
  'instanceId',
  'snapshotId',
  'imageId',
  'groupId',
  'dBSnapshotIdentifier',
  'trailName',
  'detectorId',
  'modelId',
  'logGroupName',
  'clusterName',
  'trustAnchorId',
  // Work handed to another role: the stack, build project or task definition (its revision included).
  'stackName',
  'stackSetName',
  'projectName',
  'taskDefinition',
  // A Batch job's definition before the run's own name (new every run); a Glue job by its name.
  'jobDefinition',
  'jobName',
  // An ECS service created, or changed without a new task definition (its desired count).
  'serviceName',
  'service',
  // Last: whose rights the work runs with, when nothing above names it. A SageMaker job's name is new
  // every run; its execution role is what an agent's routine jobs share and a borrowed one does not.
  'roleArn',
] as const

/** Each key's place in targetKeys: the request's own keys are looked up here (few), not all of these. */
const targetRank = new Map<string, number>(targetKeys.map((key, rank) => [key, rank]))

const maxTargetLength = 256

export function requestTarget(
  params: Record<string, unknown> | null | undefined,
  resources: readonly string[],
): string | undefined {
  if (params) {
    // A schedule (EventBridge Scheduler) names what it runs in `target.arn`: a function, a state
    // machine, or a universal target naming an API (`arn:aws:scheduler:::aws-sdk:iam:attachRolePolicy`).
    // That, not the schedule's name, is what a routine one repeats: a schedule the agent keeps
    // re-pointing at something new is new.
    const scheduled = targetArn(params.target)
    if (scheduled !== undefined) return scheduled.slice(0, maxTargetLength)
    // The first of targetKeys present, found by walking the request's keys (a handful) rather than
    // reading every name from parameters of a different shape for every API call.
    let best: number = targetKeys.length
    let named: string | undefined
    for (const key in params) {
      const rank = targetRank.get(key)
      if (rank === undefined || rank >= best) continue
      const value = params[key]
      if (typeof value !== 'string' || value === '') continue
      best = rank
      named = value
    }
    if (named !== undefined) return named.slice(0, maxTargetLength)
    const list = params.secretIdList ?? params.names ?? params.instanceIds
    if (Array.isArray(list) && list.length > 0) {
      const first = list[0]
      const named = typeof first === 'string' ? first : undefined
      if (named)
        return `${named.slice(0, maxTargetLength - 16)}${list.length > 1 ? ` (+${list.length - 1})` : ''}`
    }
    // An EventBridge rule's targets (events:PutTargets): what the rule will run, the first and a count.
    const targets = params.targets
    if (Array.isArray(targets) && targets.length > 0) {
      const first = targetArn(targets[0])
      if (first !== undefined)
        return `${first.slice(0, maxTargetLength - 16)}${targets.length > 1 ? ` (+${targets.length - 1})` : ''}`
    }
    const instances = (params.instancesSet as { items?: { instanceId?: unknown }[] } | undefined)?.items
    const instance = instances?.[0]?.instanceId
    if (typeof instance === 'string') return instance.slice(0, maxTargetLength)
  }
  return resources[0]?.slice(0, maxTargetLength)
}

/** The `arn` of a schedule's or a rule's target object (`{ arn, roleArn, input }`), when it names one. */
function targetArn(target: unknown): string | undefined {
  if (typeof target !== 'object' || target === null) return undefined
  const arn = (target as { arn?: unknown }).arn
  return typeof arn === 'string' && arn !== '' ? arn : undefined
}
