// The one resource a CloudTrail request names, read from its requestParameters: what the behavioural
// baseline remembers per agent ("resource never touched before", "N distinct secrets in M minutes").
// Pure. The keys are those the AWS APIs use; the first one present wins. Values are the watched agent's
// own text: bounded in length, never interpreted.

const targetKeys = [
  'secretId',
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
] as const

const maxTargetLength = 256

export function requestTarget(
  params: Record<string, unknown> | null | undefined,
  resources: readonly string[],
): string | undefined {
  if (params) {
    for (const key of targetKeys) {
      const value = params[key]
      if (typeof value === 'string' && value !== '') return value.slice(0, maxTargetLength)
    }
    const list = params.secretIdList ?? params.names ?? params.instanceIds
    if (Array.isArray(list) && list.length > 0) {
      const first = list[0]
      const named = typeof first === 'string' ? first : undefined
      if (named)
        return `${named.slice(0, maxTargetLength - 16)}${list.length > 1 ? ` (+${list.length - 1})` : ''}`
    }
    const instances = (params.instancesSet as { items?: { instanceId?: unknown }[] } | undefined)?.items
    const instance = instances?.[0]?.instanceId
    if (typeof instance === 'string') return instance.slice(0, maxTargetLength)
  }
  return resources[0]?.slice(0, maxTargetLength)
}
