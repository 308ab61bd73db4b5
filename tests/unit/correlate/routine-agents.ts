// Test helper: a fleet of agents doing their usual AWS calls, as CloudTrail records shaped exactly like the
// real ones in tests/fixtures (the Stratus GetSecretValue and GetCallerIdentity records, with this fleet's
// role sessions, request parameters, times and ids), and the Falco shell alert of the website sample with
// each agent's pod. Decoded through the real normalization and identity registry.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { AgentConfig, Config, NormalizedEvent } from '../../../schemas/types.ts'

const fixtures = join(import.meta.dirname, '../../fixtures')
const stratus = readFileSync(join(fixtures, 'cloudtrail/stratus-red-team-detonation-logs.ndjson'), 'utf8')
  .trim()
  .split('\n')
const secretRecord = JSON.parse(stratus[84] as string) as Record<string, unknown>
const stsRecord = JSON.parse(stratus[39] as string) as Record<string, unknown>
const shellAlert = JSON.parse(
  readFileSync(join(fixtures, 'falco/falco-website.ndjson'), 'utf8').trim().split('\n')[9] as string,
) as Record<string, unknown>

export const account = '609418236337'
export const region = 'us-east-1'
export const agentNames = [
  'billing',
  'ingest',
  'reporter',
  'search',
  'notifier',
  'scheduler',
  'exporter',
  'tagger',
]
export const roleArn = (agent: string) => `arn:aws:iam::${account}:role/agent-${agent}`
export const secretArn = (agent: string) =>
  `arn:aws:secretsmanager:${region}:${account}:secret:agents/${agent}/db-Xy12Ab`

const uuid = (seed: string) => {
  const h = createHash('sha256').update(seed).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`
}

/** One CloudTrail record of `agent`'s role session: the real record shapes, this fleet's values. */
export function call(
  agent: string,
  time: number,
  action: string,
  requestParameters: Record<string, unknown> | null,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const [service, eventName] = action.split(':') as [string, string]
  const template = service === 'secretsmanager' ? secretRecord : stsRecord
  const session = `botocore-session-${agent}`
  return {
    ...template,
    awsRegion: region,
    eventID: uuid(`${agent}|${time}|${action}|${JSON.stringify(requestParameters)}`),
    eventName,
    eventSource: `${service}.amazonaws.com`,
    eventTime: new Date(time).toISOString().replace('.000Z', 'Z'),
    readOnly: !/^(Put|Create|Delete|Update)/.test(eventName),
    recipientAccountId: account,
    requestID: uuid(`req|${agent}|${time}|${action}`),
    requestParameters,
    tlsDetails: {
      cipherSuite: 'TLS_AES_128_GCM_SHA256',
      clientProvidedHostHeader: `${service}.${region}.amazonaws.com`,
      tlsVersion: 'TLSv1.3',
    },
    userAgent: 'Boto3/1.34.144 md/Botocore#1.34.144 ua/2.0 os/linux#5.10.219 lang/python#3.12.4',
    userIdentity: {
      accessKeyId: `ASIA${createHash('md5').update(agent).digest('hex').slice(0, 16).toUpperCase()}`,
      accountId: account,
      arn: `arn:aws:sts::${account}:assumed-role/agent-${agent}/${session}`,
      principalId: `AROA${agent.toUpperCase().padEnd(17, 'X')}:${session}`,
      sessionContext: {
        attributes: { creationDate: new Date(time - 600_000).toISOString(), mfaAuthenticated: 'false' },
        sessionIssuer: {
          accountId: account,
          arn: roleArn(agent),
          principalId: `AROA${agent.toUpperCase().padEnd(17, 'X')}`,
          type: 'Role',
          userName: `agent-${agent}`,
        },
        webIdFederationData: {},
      },
      type: 'AssumedRole',
    },
    ...extra,
  }
}

/** What each agent does every tick: its own secret and parameter, KMS, S3, STS and CloudWatch Logs. */
export function routineCalls(agent: string, time: number): Record<string, unknown>[] {
  return [
    call(agent, time, 'secretsmanager:GetSecretValue', { secretId: secretArn(agent) }),
    call(agent, time + 1_000, 'ssm:GetParameter', { name: `/agents/${agent}/config`, withDecryption: true }),
    call(agent, time + 2_000, 'kms:Decrypt', { encryptionAlgorithm: 'SYMMETRIC_DEFAULT' }),
    call(agent, time + 3_000, 's3:GetObject', { bucketName: `acme-${agent}-data`, key: 'in/batch.json' }),
    call(agent, time + 4_000, 's3:PutObject', { bucketName: `acme-${agent}-data`, key: 'out/batch.json' }),
    call(agent, time + 5_000, 'sts:GetCallerIdentity', null),
    call(agent, time + 6_000, 'logs:CreateLogStream', {
      logGroupName: `/agents/${agent}`,
      logStreamName: 'run',
    }),
    call(agent, time + 7_000, 'logs:PutLogEvents', {
      logGroupName: `/agents/${agent}`,
      logStreamName: 'run',
    }),
  ]
}

/** The engineer's debug shell in the agent's pod: the real Falco alert, this agent's pod and time. */
export function debugShell(agent: string, time: number): Record<string, unknown> {
  const fields = shellAlert.output_fields as Record<string, unknown>
  return {
    ...shellAlert,
    hostname: 'ip-10-0-1-23.ec2.internal',
    time: new Date(time).toISOString(),
    output_fields: { ...fields, 'k8s.ns.name': 'agents', 'k8s.pod.name': `${agent}-6d9f7c8b5-x7k2p` },
  }
}

export function fleetConfig(): Config {
  const base = loadConfig()
  const agents: AgentConfig[] = agentNames.map((agent) => ({
    id: agent,
    protected: false,
    match: { k8s: [{ namespace: 'agents', pod: `${agent}-*` }], aws: [roleArn(agent)] },
  }))
  return { ...base, agents }
}

/** Decodes raw items (in the order given, which is event-time order here) into normalized events. */
export function decode(config: Config, items: readonly Record<string, unknown>[]): NormalizedEvent[] {
  const decoder = createEventDecoder(config)
  const text = items.map((r) => JSON.stringify(r)).join('\n')
  return decoder.decode('any', splitJsonItems(text, { maxItems: 1_000_000, maxDepth: 64 }), {
    receivedAt: 0,
  }).events
}
