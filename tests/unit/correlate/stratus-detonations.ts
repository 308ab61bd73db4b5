// Test helper: detonations of the real Stratus Red Team detonation logs (35 AWS techniques):
// each technique's records, placed after a real Falco "Terminal shell in container" alert of the same
// agent (the registry names the pod and every AWS principal of the detonation), must produce a
// correlation for at least 30 of them. Line ranges: tests/fixtures/cloudtrail/ATTRIBUTION.md and
// ../shared/samples/cloudtrail/README.md.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createReplay } from '../../../correlate/replay-correlations.ts'
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config, Correlation, NormalizedEvent } from '../../../schemas/types.ts'

const fixtures = join(import.meta.dirname, '../../fixtures')
const records = readFileSync(join(fixtures, 'cloudtrail/stratus-red-team-detonation-logs.ndjson'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as Record<string, unknown>)
const shellAlert = JSON.parse(
  readFileSync(join(fixtures, 'falco/falco-website.ndjson'), 'utf8').trim().split('\n')[9] as string,
) as Record<string, unknown>

/** Technique → 1-based inclusive line range in the detonation logs. */
export const stratusTechniques: [string, number, number][] = [
  ['aws.credential-access.ec2-get-password-data', 1, 34],
  ['aws.credential-access.ec2-steal-instance-credentials', 35, 79],
  ['aws.credential-access.secretsmanager-batch-retrieve-secrets', 80, 84],
  ['aws.credential-access.secretsmanager-retrieve-secrets', 85, 105],
  ['aws.credential-access.ssm-retrieve-securestring-parameters', 106, 115],
  ['aws.defense-evasion.cloudtrail-delete', 116, 116],
  ['aws.defense-evasion.cloudtrail-event-selectors', 117, 117],
  ['aws.defense-evasion.cloudtrail-stop', 118, 118],
  ['aws.defense-evasion.dns-delete-logs', 119, 119],
  ['aws.defense-evasion.organizations-leave', 120, 122],
  ['aws.defense-evasion.vpc-remove-flow-logs', 123, 123],
  ['aws.discovery.ec2-download-user-data', 124, 142],
  ['aws.execution.ec2-launch-unusual-instances', 143, 145],
  ['aws.execution.ec2-user-data', 146, 180],
  ['aws.execution.ssm-send-command', 181, 236],
  ['aws.execution.ssm-start-session', 237, 265],
  ['aws.exfiltration.ec2-security-group-open-port-22-ingress', 266, 266],
  ['aws.exfiltration.ec2-share-ami', 267, 267],
  ['aws.exfiltration.ec2-share-ebs-snapshot', 268, 268],
  ['aws.exfiltration.rds-share-snapshot', 269, 269],
  ['aws.impact.bedrock-invoke-model', 270, 284],
  ['aws.initial-access.console-login-without-mfa', 285, 285],
  ['aws.lateral-movement.ec2-instance-connect', 286, 288],
  ['aws.lateral-movement.ec2-serial-console-send-ssh-public-key', 289, 292],
  ['aws.persistence.iam-backdoor-role', 293, 293],
  ['aws.persistence.iam-backdoor-user', 294, 294],
  ['aws.persistence.iam-create-admin-user', 295, 297],
  ['aws.persistence.iam-create-backdoor-role', 298, 299],
  ['aws.persistence.iam-create-user-login-profile', 300, 302],
  ['aws.persistence.lambda-backdoor-function', 303, 303],
  ['aws.persistence.lambda-layer-extension', 304, 304],
  ['aws.persistence.lambda-overwrite-code', 305, 305],
  ['aws.persistence.rolesanywhere-create-trust-anchor', 306, 307],
  ['aws.persistence.sts-federation-token', 308, 309],
  ['aws.privilege-escalation.iam-update-user-login-profile', 310, 310],
]

const base = loadConfig()
export const victimConfig: Config = {
  ...base,
  agents: [
    {
      id: 'victim',
      protected: false,
      // The alert's pod, and every principal of the detonation: all of it is this one agent's doing.
      match: { k8s: [{ namespace: 'default', pod: 'alpine' }], aws: ['arn:aws:*'] },
    },
  ],
}

/**
 * victimConfig with a rule that pairs a shell with sts:GetCallerIdentity (a caller asking who it is): the one
 * call the federated user of the sts-federation-token technique makes (lines 308–309).
 */
export const whoAmIConfig: Config = {
  ...victimConfig,
  correlation: {
    ...victimConfig.correlation,
    extra_rules: [
      {
        id: 'shell-then-who-am-i',
        edge: { rules: ['Terminal shell in container'] },
        core: { actions: ['sts:GetCallerIdentity'] },
        severity: 40,
        revoke: false,
      },
    ],
  },
}

/** The technique's records after a shell alert dated 30 s before its first record, in event-time order. */
export function detonate(from: number, to: number, cfg: Config = victimConfig): Correlation[] {
  return detonation(stratusRecords(from, to), cfg).correlations
}

/** The detonation logs' records of lines `from` to `to` (1-based, inclusive), copies a test may edit. */
export const stratusRecords = (from: number, to: number): Record<string, unknown>[] =>
  structuredClone(records.slice(from - 1, to))

/** These records after a shell alert dated 30 s before the first: the normalized events and correlations. */
export function detonation(
  slice: readonly Record<string, unknown>[],
  cfg: Config = victimConfig,
): { events: NormalizedEvent[]; correlations: Correlation[] } {
  const first = Math.min(...slice.map((r) => Date.parse(r.eventTime as string)))
  const alert = { ...shellAlert, time: new Date(first - 30_000).toISOString() }
  const decoder = createEventDecoder(cfg)
  const text = [alert, ...slice].map((r) => JSON.stringify(r)).join('\n')
  const { events } = decoder.decode('any', splitJsonItems(text, { maxItems: 1000, maxDepth: 64 }), {
    receivedAt: 0,
  })
  events.sort((a, b) => a.time - b.time || a.time_ns - b.time_ns)
  const replay = createReplay(cfg)
  return { events, correlations: events.flatMap((e) => replay.push(e).correlations) }
}
