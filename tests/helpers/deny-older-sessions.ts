// The AWS console's "Revoke active sessions" policy document, as CloudTrail records it (a JSON string):
// one statement denying everything to tokens issued before `issuedBefore` (any value: tests pass bad ones).
export const denyOlderSessions = (issuedBefore: unknown): string =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: {
      Effect: 'Deny',
      Action: '*',
      Resource: '*',
      Condition: { DateLessThan: { 'aws:TokenIssueTime': issuedBefore } },
    },
  })
