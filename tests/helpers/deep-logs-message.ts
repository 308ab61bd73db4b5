// A CloudWatch Logs payload whose messages are CloudTrail records nested `depth` deep (an IAM write with a
// deep request parameter): one with an eventID, one without (its id is then a hash of the record, made
// recursively), and a shallow one. Each record is a JSON string inside the payload, parsed apart from the
// body or file that carries it, so its depth has to be checked on its own.

const record = (id: string | undefined, depth: number) =>
  JSON.stringify({
    eventVersion: '1.08',
    ...(id ? { eventID: id } : {}),
    eventTime: '2025-06-15T15:00:00Z',
    eventSource: 'iam.amazonaws.com',
    eventName: 'AttachRolePolicy',
    userIdentity: { type: 'AssumedRole', arn: 'arn:aws:sts::123456789012:assumed-role/r/s' },
    requestParameters: { x: 'NESTED' },
  }).replace('"NESTED"', `${'['.repeat(depth)}${']'.repeat(depth)}`)

export const deepLogsPayload = (depth: number) => ({
  messageType: 'DATA_MESSAGE',
  owner: '123456789012',
  logGroup: 'trail',
  logStream: 'stream',
  subscriptionFilters: ['all'],
  logEvents: [
    { id: '1', timestamp: 1, message: record('deep-with-id', depth) },
    { id: '2', timestamp: 1, message: record(undefined, depth) },
    { id: '3', timestamp: 1, message: record('shallow', 2) },
  ],
})
