// The events of the revoke-latency bench: the Falco alert and CloudTrail record that complete a pair for
// a registry agent, and the background noise (other pods' alerts, read-only calls) that no rule uses.

import { Agent, request } from 'node:http'

// Keep-alive connections, as Falcosidekick's HTTP client keeps them. node:http rather than fetch: fetch
// costs the sender about three times the CPU per request, which on a small machine is taken from nerve.
const agent = new Agent({ keepAlive: true, maxSockets: 32 })

/** POSTs a JSON body to an ingest route as a sender does; rejects unless nerve answers 202. */
export const postEvents = (base: string, token: string, path: string, body: unknown): Promise<void> =>
  new Promise((resolve, reject) => {
    const text = JSON.stringify(body)
    const req = request(
      `${base}${path}`,
      {
        agent,
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
        },
      },
      (res) => {
        res.resume()
        res.once('end', () =>
          res.statusCode === 202 ? resolve() : reject(new Error(`POST ${path} answered ${res.statusCode}`)),
        )
      },
    )
    req.once('error', reject)
    req.end(text)
  })
const iso = () => new Date().toISOString()

export function pairAlert(agent: string) {
  return {
    output: `Disallowed outbound connection destination (connection=10.0.1.23:41234->203.0.113.7:443 pod=${agent}-7f9c)`,
    priority: 'Warning',
    rule: 'Unexpected outbound connection destination',
    time: iso(),
    source: 'syscall',
    hostname: 'ip-10-0-1-23.ec2.internal',
    output_fields: { 'k8s.ns.name': 'bench', 'k8s.pod.name': `${agent}-7f9c`, 'fd.rip': '203.0.113.7' },
  }
}

export function pairRecord(agent: string, i: number) {
  return cloudTrail(
    `0000${String(i).padStart(8, '0')}`,
    agent,
    'iam.amazonaws.com',
    'AttachRolePolicy',
    false,
  )
}

export function noiseAlert(n: number) {
  return {
    output: `A shell was spawned in a container (pod=noise-${n % 500})`,
    priority: 'Notice',
    rule: 'Terminal shell in container',
    time: iso(),
    source: 'syscall',
    hostname: 'ip-10-0-2-17.ec2.internal',
    output_fields: { 'k8s.ns.name': 'noise', 'k8s.pod.name': `noise-${n % 500}-x`, 'proc.pid': n },
  }
}

export function noiseRecord(n: number) {
  return cloudTrail(
    `1${String(n).padStart(11, '0')}`,
    `noise-${n % 500}`,
    's3.amazonaws.com',
    'GetObject',
    true,
  )
}

function cloudTrail(id: string, role: string, source: string, name: string, readOnly: boolean) {
  const time = `${iso().slice(0, 19)}Z`
  return {
    eventVersion: '1.08',
    userIdentity: {
      type: 'AssumedRole',
      principalId: `AROAEXAMPLE${role.length}:s`,
      arn: `arn:aws:sts::123456789012:assumed-role/${role}/s`,
      accountId: '123456789012',
      accessKeyId: 'ASIAEXAMPLEEXAMPLE01',
      sessionContext: {
        sessionIssuer: {
          type: 'Role',
          principalId: 'AROAEXAMPLE',
          arn: `arn:aws:iam::123456789012:role/${role}`,
          accountId: '123456789012',
          userName: role,
        },
        attributes: { creationDate: time, mfaAuthenticated: 'false' },
      },
    },
    eventTime: time,
    eventSource: source,
    eventName: name,
    awsRegion: 'us-east-1',
    sourceIPAddress: '203.0.113.7',
    userAgent: 'aws-cli/2.15.0',
    requestParameters: readOnly
      ? { bucketName: 'b', key: 'k' }
      : { roleName: role, policyArn: 'arn:aws:iam::aws:policy/AdministratorAccess' },
    responseElements: null,
    requestID: id,
    eventID: `7f3e2a10-0000-4000-8000-${id}`,
    readOnly,
    eventType: 'AwsApiCall',
    managementEvent: !readOnly,
    recipientAccountId: '123456789012',
  }
}
