// A baseline the watched agent trains must not discount a call whose harm is in its request: opening a bucket
// to others, a command pushed through SSM, an instance's user data rewritten. The agent re-puts its
// bucket's policy every 10 minutes for a day (harmless: the same document), so s3:PutBucketPolicy on that
// bucket is "routine" (−20). Then a shell in its pod and a PutBucketPolicy on the same bucket (the one
// that makes it public: the baseline keys on action and bucket, never on the document) scored 50–65 with
// the built-in runtime-alert-then-data-exposure rule: below revoke.min_score, suppressed as
// below_min_score (counted, never recorded). Snapshots and images shared the same way were never
// discounted (critical actions); a bucket's policy, ACL, public access block and replication now are not,
// nor are SSM's commands and sessions or user data and launch templates: the same harmless command sent all
// day would otherwise make the one that is not "routine" (the baseline never reads the command).
import { describe, expect, it } from 'vitest'
import { createReplay } from '../../../correlate/replay-correlations.ts'
import { call, debugShell, decode, fleetConfig, routineCalls } from './routine-agents.ts'

const T0 = Date.UTC(2026, 2, 2, 0, 0)
const tick = 600_000
const day = 86_400_000
const bucket = 'acme-exporter-data'

const exposure = 'runtime-alert-then-data-exposure'
const instance = 'i-0a1b2c3d4e5f67890'
const exposures: [string, Record<string, unknown>, string][] = [
  [
    's3:PutBucketPolicy',
    { bucketName: bucket, bucketPolicy: { Version: '2012-10-17', Statement: [] } },
    exposure,
  ],
  ['s3:PutBucketAcl', { bucketName: bucket, acl: [''] }, exposure],
  ['s3:DeletePublicAccessBlock', { bucketName: bucket, publicAccessBlock: [''] }, exposure],
  ['s3:DeleteBucketPolicy', { bucketName: bucket, policy: [''] }, exposure],
  ['s3:PutBucketReplication', { bucketName: bucket, replication: [''] }, exposure],
  [
    'ssm:SendCommand',
    {
      instanceIds: [instance],
      documentName: 'AWS-RunShellScript',
      parameters: 'HIDDEN_DUE_TO_SECURITY_REASONS',
    },
    'runtime-alert-then-cloud-admin-command',
  ],
  ['ssm:StartSession', { target: instance }, 'runtime-alert-then-cloud-admin-command'],
  [
    'ec2:ModifyInstanceAttribute',
    { instanceId: instance, userData: '<sensitiveDataRemoved>' },
    'runtime-alert-then-user-data-change',
  ],
]

function matching(config: ReturnType<typeof fleetConfig>, items: Record<string, unknown>[], rule: string) {
  const events = decode(config, items).sort((a, b) => a.time - b.time || a.time_ns - b.time_ns)
  const replay = createReplay(config)
  return events.flatMap((e) => replay.push(e).correlations).filter((c) => c.rule.id === rule)
}

describe('a baseline trained by the watched agent', () => {
  it.each(exposures)(
    'never discounts %s on a target it touched routinely: it scores as from an agent never seen',
    (action, params, rule) => {
      const config = fleetConfig()
      const training: Record<string, unknown>[] = []
      for (let t = T0; t < T0 + day; t += tick) {
        training.push(...routineCalls('exporter', t), call('exporter', t + 8_000, action, params))
      }
      const shellAt = T0 + day + 30_000
      const attack = [debugShell('exporter', shellAt), call('exporter', shellAt + 60_000, action, params)]
      const trained = matching(config, [...training, ...attack], rule)
      const untrained = matching(config, attack, rule)
      expect(trained).toHaveLength(1)
      const routine = trained[0]?.reasons.find((r) => r.factor === 'baseline_routine')
      expect(routine?.points).toBe(0)
      expect(routine?.detail).toMatch(
        /but a call whose harm is in its request .* is never discounted as routine$/,
      )
      // A day of the same call earns it nothing: it scores as it would from an agent never seen before.
      expect(trained[0]?.score).toBe(untrained[0]?.score)
      if (rule === exposure) expect(trained[0]?.score).toBeGreaterThanOrEqual(config.revoke.min_score)
    },
  )
})
