// The compose stack's demo CloudTrail feed: every minute, posts one real CloudTrail record re-dated to now,
// made by the demo agent's role (deploy/nerve.yaml: agent nerve-demo), to nerve's /v1/cloudtrail. With the
// Falco alerts that event-generator provokes in the same agent's container, the built-in rule
// runtime-alert-then-logging-tampering correlates the two. The record is Stratus Red Team's
// aws.defense-evasion.cloudtrail-stop detonation (DataDog/stratus-red-team, Apache-2.0), its identity
// replaced by the demo role. Not for production: it invents activity.
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'

const url = process.env.NERVE_INGEST_URL ?? 'http://ingest:8080/v1/cloudtrail'
const token = readFileSync(process.env.NERVE_INGEST_TOKEN_FILE ?? '/run/nerve/ingest-token', 'utf8').trim()
const everyMs = Number(process.env.DEMO_INTERVAL_MS ?? 60_000)

const record = (now) => ({
  eventVersion: '1.10',
  userIdentity: {
    type: 'AssumedRole',
    principalId: 'AROADEMOAGENTEXAMPLE:nerve-demo',
    arn: 'arn:aws:sts::123456789012:assumed-role/nerve-demo-agent/nerve-demo',
    accountId: '123456789012',
    accessKeyId: 'ASIADEMOAGENTEXAMPLE',
    sessionContext: {
      sessionIssuer: {
        type: 'Role',
        principalId: 'AROADEMOAGENTEXAMPLE',
        arn: 'arn:aws:iam::123456789012:role/nerve-demo-agent',
        accountId: '123456789012',
        userName: 'nerve-demo-agent',
      },
      attributes: { creationDate: new Date(now - 60_000).toISOString(), mfaAuthenticated: 'false' },
    },
  },
  eventTime: new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  eventSource: 'cloudtrail.amazonaws.com',
  eventName: 'StopLogging',
  awsRegion: 'us-east-1',
  sourceIPAddress: '203.0.113.10',
  userAgent: 'nerve-demo',
  requestParameters: { name: 'nerve-demo-trail' },
  responseElements: null,
  requestID: randomUUID(),
  eventID: randomUUID(),
  readOnly: false,
  eventType: 'AwsApiCall',
  managementEvent: true,
  recipientAccountId: '123456789012',
  eventCategory: 'Management',
})

async function post() {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(record(Date.now())),
    })
    process.stdout.write(`posted a demo CloudTrail record: ${res.status}\n`)
  } catch (err) {
    process.stdout.write(`could not post the demo record: ${err.message}\n`)
  }
}

await post()
setInterval(post, everyMs)
