// A correlation as the correlator emits it (schemas/types.ts), shaped after DESIGN.md's example: Falco sees
// pod agents/data-cleaner-7f9c connect out, then CloudTrail shows its role calling iam:AttachRolePolicy.
import type { Correlation, RevokeOutcome } from '../../../schemas/types.ts'

export function makeCorrelation(n = 0, overrides: Partial<Correlation> = {}): Correlation {
  const edgeTime = Date.UTC(2026, 10, 25, 16, 0, 0) + n * 1000
  return {
    id: `c${String(n).padStart(63, '0')}`,
    time: edgeTime + 90_000,
    rule: { id: 'outbound-then-iam-write', severity: 80, revoke: true },
    agent: {
      id: 'data-cleaner',
      resolved_by: 'registry',
      identity: {
        k8s_namespace: 'agents',
        k8s_pod: 'data-cleaner-7f9c',
        k8s_service_account: 'data-cleaner',
        cluster: 'prod-eu',
        principal_arn: 'arn:aws:sts::123456789012:assumed-role/data-cleaner/botocore-session-1732550400',
        role_arn: 'arn:aws:iam::123456789012:role/data-cleaner',
        access_key_id: 'ASIAY34FZKBOKMUTVV7A',
        account_id: '123456789012',
      },
    },
    edge: {
      event_id: `e${n}`,
      time: edgeTime,
      rule: 'Unexpected outbound connection destination',
      priority: 'warning',
      output: 'Disallowed outbound connection destination (connection=10.0.1.23:41234->203.0.113.7:443)',
      hostname: 'ip-10-0-1-23.ec2.internal',
      source: 'syscall',
      tags: ['network', 'mitre_exfiltration'],
    },
    core: {
      event_id: `3f1a2c0e-0000-4000-8000-${String(n).padStart(12, '0')}`,
      time: edgeTime + 90_000,
      action: 'iam:AttachRolePolicy',
      principal: 'arn:aws:sts::123456789012:assumed-role/data-cleaner/botocore-session-1732550400',
      read_only: false,
      source_ip: '203.0.113.7',
      region: 'us-east-1',
      account_id: '123456789012',
    },
    delta_ms: 90_000,
    window: { before: 60_000, after: 600_000, grace: 1_200_000 },
    score: 88,
    reasons: [{ factor: 'rule_severity', points: 48, detail: 'rule severity 80' }],
    incident: { id: `inc-data-cleaner-${n}` },
    ...overrides,
  }
}

/** The watched agent's held-back revokes, as the dispatcher records them. */
export const heldBack = (n: number): RevokeOutcome => ({
  id: `rvk_held_${n}:0`,
  decision_id: `rvk_held_${n}`,
  time: Date.UTC(2026, 10, 25, 16, 2) + n,
  correlation_id: makeCorrelation(n).id,
  incident_id: 'inc-data-cleaner',
  agent_id: 'data-cleaner',
  status: 'suppressed',
  reason: 'rate_limited_agent',
  attempts: 0,
})
