// A baseline the watched agent trains must not discount opening a bucket to others. The agent re-puts its
// bucket's policy every 10 minutes for a day (harmless: the same document), so s3:PutBucketPolicy on that
// bucket is "routine" (−20). Then a shell in its pod and a PutBucketPolicy on the same bucket (the one
// that makes it public: the baseline keys on action and bucket, never on the document) scored 50–65 with
// the built-in runtime-alert-then-data-exposure rule: below revoke.min_score, suppressed as
// below_min_score (counted, never recorded). Snapshots and images shared the same way were never
// discounted (critical actions); a bucket's policy, ACL, public access block and replication now are not.
import { describe, expect, it } from 'vitest'
import { createReplay } from '../../../correlate/replay-correlations.ts'
import { call, debugShell, decode, fleetConfig, routineCalls } from './routine-agents.ts'

const T0 = Date.UTC(2026, 2, 2, 0, 0)
const tick = 600_000
const day = 86_400_000
const bucket = 'acme-exporter-data'

const exposures: [string, Record<string, unknown>][] = [
  ['s3:PutBucketPolicy', { bucketName: bucket, bucketPolicy: { Version: '2012-10-17', Statement: [] } }],
  ['s3:PutBucketAcl', { bucketName: bucket, acl: [''] }],
  ['s3:DeletePublicAccessBlock', { bucketName: bucket, publicAccessBlock: [''] }],
  ['s3:DeleteBucketPolicy', { bucketName: bucket, policy: [''] }],
  ['s3:PutBucketReplication', { bucketName: bucket, replication: [''] }],
]

describe('a baseline trained by the watched agent', () => {
  it.each(exposures)(
    'never discounts %s on a bucket it touched routinely: the exposure reaches revoke grade',
    (action, params) => {
      const config = fleetConfig()
      const items: Record<string, unknown>[] = []
      for (let t = T0; t < T0 + day; t += tick) {
        items.push(...routineCalls('exporter', t), call('exporter', t + 8_000, action, params))
      }
      const shellAt = T0 + day + 30_000
      items.push(debugShell('exporter', shellAt), call('exporter', shellAt + 60_000, action, params))
      const events = decode(config, items).sort((a, b) => a.time - b.time || a.time_ns - b.time_ns)
      const replay = createReplay(config)
      const correlations = events.flatMap((e) => replay.push(e).correlations)
      const exposure = correlations.filter((c) => c.rule.id === 'runtime-alert-then-data-exposure')
      expect(exposure).toHaveLength(1)
      const c = exposure[0]
      expect(c?.reasons.find((r) => r.factor === 'baseline_routine')?.points).toBe(0)
      expect(c?.score).toBeGreaterThanOrEqual(config.revoke.min_score)
    },
  )
})
