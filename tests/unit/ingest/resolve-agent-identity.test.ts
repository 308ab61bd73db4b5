// Stitching with the real issuing events. The samples hold no later call made with the issued keys, so the
// "later calls" below are real records (Stratus GetPasswordData, the Marketplace IRSA call) with their
// accessKeyId and eventTime set to a use of those credentials; the IRSA issuing event is the current IAM
// doc example with the web-identity user name and provider an EKS service account token carries (the
// provider of the greenpau argo-plugin IRSA record in /work/shared/samples, in this account).
import { describe, expect, it } from 'vitest'
import { eventsTopic } from '../../../bus/topics.ts'
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import {
  createAgentResolver,
  registryWarnings,
  workloadName,
} from '../../../ingest/resolve-agent-identity.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import { agent, auth, fixtureLines, startHarness } from './ingest-harness.ts'

const podIdentity = fixtureLines('cloudtrail/aws-samples-eks-pod-identity.ndjson')
const issuePod = podIdentity[2] // sts:AssumeRole by pods.eks.amazonaws.com → ASIA37QFXJP5MQOWRZ6Q, ns-a/sa1/app1
const stratus = fixtureLines('cloudtrail/stratus-red-team-detonation-logs.ndjson')
const oidc = fixtureLines('cloudtrail/aws-iam-docs-current-oidc-example.ndjson')[0]
const eksProvider =
  'arn:aws:iam::444455556666:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/A8242F25BFBB8F98F5321B2AE63C8B5C'
const irsaIssue = {
  ...oidc,
  userIdentity: {
    ...oidc.userIdentity,
    principalId: `${eksProvider}:sts.amazonaws.com:system:serviceaccount:agents:data-cleaner`,
    userName: 'system:serviceaccount:agents:data-cleaner',
    identityProvider: eksProvider,
  },
  responseElements: { ...oidc.responseElements, provider: eksProvider },
}
const irsaUse = fixtureLines('cloudtrail/awsdocs-marketplace-eks-irsa-examples.ndjson')[1]

const useWith = (record: Record<string, unknown>, keyId: string, eventTime: string, eventID: string) => ({
  ...record,
  eventTime,
  eventID,
  userIdentity: { ...(record.userIdentity as object), accessKeyId: keyId },
})
const podUse = useWith(stratus[0], 'ASIA37QFXJP5MQOWRZ6Q', '2024-04-16T10:00:00Z', 'use-pod-1')
const podUseExpired = useWith(stratus[0], 'ASIA37QFXJP5MQOWRZ6Q', '2024-04-16T16:00:00Z', 'use-pod-2')
const irsaLater = useWith(irsaUse, 'ASIAIOSFODNN7EXAMPLE', '2024-07-09T16:00:00Z', 'use-irsa-1')

const config = (agents: Parameters<typeof agent>[] = []) => ({
  agents: agents.map((a) => agent(...a)),
  revoke: { self_identities: [] },
})
const items = (...records: unknown[]) =>
  splitJsonItems(records.map((r) => JSON.stringify(r)).join('\n'), { maxItems: 100, maxDepth: 64 })

describe('identity resolution', () => {
  it('resolves later calls with Pod Identity credentials to the pod workload, for the credential lifetime', () => {
    const decoder = createEventDecoder(config())
    const [issue, use, expired] = decoder.decode('cloudtrail', items(issuePod, podUse, podUseExpired), {
      receivedAt: 0,
    }).events
    expect(issue?.agent).toEqual({ id: 'ns-a/app1', resolved_by: 'workload' })
    expect(issue?.core?.credentials).toEqual({
      access_key_id: 'ASIA37QFXJP5MQOWRZ6Q',
      expires: Date.parse('2024-04-16T15:20:04Z'),
    })
    expect(use?.agent).toEqual({ id: 'ns-a/app1', resolved_by: 'stitched' })
    expect(use?.identity).toMatchObject({
      k8s_namespace: 'ns-a',
      k8s_service_account: 'sa1',
      k8s_pod: 'app1',
      cluster: 'eksworkshop-eksctl',
    })
    expect(expired?.agent.resolved_by).toBe('principal')
  })

  it('resolves later calls with IRSA credentials to the service-account agent named in the registry', () => {
    const decoder = createEventDecoder(
      config([['data-cleaner', { k8s: [{ namespace: 'agents', service_account: 'data-cleaner' }] }]]),
    )
    const [issue, use] = decoder.decode('cloudtrail', items(irsaIssue, irsaLater), { receivedAt: 0 }).events
    expect(issue?.agent).toEqual({ id: 'data-cleaner', resolved_by: 'registry' })
    expect(use?.agent).toEqual({ id: 'data-cleaner', resolved_by: 'stitched' })
    const unregistered = createEventDecoder(config()).decode('cloudtrail', items(irsaIssue, irsaLater), {
      receivedAt: 0,
    })
    expect(unregistered.events[1]?.agent).toEqual({ id: 'agents/data-cleaner', resolved_by: 'stitched' })
  })

  it('follows role chaining: credentials an AssumeRole signed with a stitched key issues belong to the same agent', () => {
    // IRSA issues ASIAIOSFODNN7EXAMPLE to agents/data-cleaner; with it, the workload assumes the Stratus
    // role (the real AssumeRole of line 32, issuing ASIANQQHHS551LWULIWD), then calls GetPasswordData.
    const issue = { ...irsaIssue, eventTime: '2024-07-30T21:30:00Z', eventID: 'irsa-chain-issue' }
    const chain = {
      ...useWith(stratus[31], 'ASIAIOSFODNN7EXAMPLE', '2024-07-30T21:31:15Z', 'chain-assume'),
      responseElements: {
        ...stratus[31].responseElements,
        credentials: { ...stratus[31].responseElements.credentials, expiration: 'Jul 30, 2024, 9:46:15 PM' },
      },
    }
    const use = { ...stratus[0], eventTime: '2024-07-30T21:35:00Z', eventID: 'chain-use' }
    const decoder = createEventDecoder(config())
    const events = decoder.decode('cloudtrail', items(issue, chain, use), { receivedAt: 0 }).events
    expect(events.map((e) => e.agent)).toEqual([
      { id: 'agents/data-cleaner', resolved_by: 'workload' },
      { id: 'agents/data-cleaner', resolved_by: 'stitched' },
      { id: 'agents/data-cleaner', resolved_by: 'stitched' },
    ])
    expect(events[2]?.identity).toMatchObject({
      access_key_id: 'ASIANQQHHS551LWULIWD',
      k8s_namespace: 'agents',
      k8s_service_account: 'data-cleaner',
    })
  })

  it("names the agent of a record that came through Falco's cloudtrail plugin as of the same record from CloudTrail", () => {
    const record = stratus[0] // GetPasswordData by an assumed-role session of the Stratus role
    const viaPlugin = {
      time: `${record.eventTime.slice(0, -1)}.000000000Z`,
      rule: 'AWS API call',
      priority: 'Informational',
      source: 'aws_cloudtrail',
      output: `${record.eventName} by ${record.userIdentity.arn}`,
      output_fields: {
        'ct.id': record.eventID,
        'ct.src': record.eventSource,
        'ct.name': record.eventName,
        'ct.user.arn': record.userIdentity.arn,
        'ct.user.accountid': record.userIdentity.accountId,
        'ct.user.identitytype': record.userIdentity.type,
        'ct.error': record.errorCode,
        'ct.region': record.awsRegion,
      },
    }
    const role = 'arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role'
    const decoder = createEventDecoder(config([['password-reader', { aws: [role] }]]))
    const [fromTrail] = decoder.decode('cloudtrail', items(record), { receivedAt: 0 }).events
    const [fromFalco] = decoder.decode('falco', items(viaPlugin), { receivedAt: 0 }).events
    expect(fromTrail?.agent).toEqual({ id: 'password-reader', resolved_by: 'registry' })
    expect(fromFalco?.agent).toEqual(fromTrail?.agent)
    expect(fromFalco?.id).toBe(fromTrail?.id)
    expect(fromFalco?.core?.session_issuer_arn).toBe(role)
  })

  it('learns the pod behind a Pod Identity service account, so a registry entry by service account names its alerts', () => {
    // The real Pod Identity AssumeRole of ns-a/app1 (service account sa1), then a shell alert in that pod.
    const shell = {
      ...fixtureLines('falco/falco-website.ndjson')[9],
      time: '2024-04-16T09:30:00.000000000Z',
      output_fields: { 'k8s.ns.name': 'ns-a', 'k8s.pod.name': 'app1', 'container.id': 'f29b261f8831' },
    }
    const registry = config([['app-one', { k8s: [{ namespace: 'ns-a', service_account: 'sa1' }] }]])
    const before = createEventDecoder(registry).decode('falco', items(shell), { receivedAt: 0 }).events[0]
    expect(before?.agent).toEqual({ id: 'ns-a/app1', resolved_by: 'workload' })
    const decoder = createEventDecoder(registry)
    decoder.decode('cloudtrail', items(issuePod), { receivedAt: 0 })
    const after = decoder.decode('falco', items(shell), { receivedAt: 0 }).events[0]
    expect(after?.agent).toEqual({ id: 'app-one', resolved_by: 'registry' })
    expect(after?.identity).toMatchObject({ k8s_pod: 'app1', k8s_service_account: 'sa1' })
  })

  it('keeps the cluster in the workload key: the same namespace and pod in two clusters never join', () => {
    // The real Pod Identity AssumeRole names cluster eksworkshop-eksctl; its credentials then call.
    const shellOn = (host: string, fields: Record<string, unknown> = {}) => ({
      ...fixtureLines('falco/falco-website.ndjson')[9],
      hostname: host,
      time: '2024-04-16T09:30:00.000000000Z',
      output_fields: {
        'k8s.ns.name': 'ns-a',
        'k8s.pod.name': 'app1',
        'container.id': 'f29b261f8831',
        ...fields,
      },
    })
    const decoder = createEventDecoder({
      ...config(),
      clusters: [
        { name: 'eksworkshop-eksctl', hosts: ['ip-10-0-*'] },
        { name: 'staging', hosts: ['ip-10-9-*'] },
      ],
    })
    const [, use] = decoder.decode('cloudtrail', items(issuePod, podUse), { receivedAt: 0 }).events
    const [home, twin, tagged] = decoder.decode(
      'falco',
      items(
        shellOn('ip-10-0-1-23.ec2.internal'),
        shellOn('ip-10-9-1-23.ec2.internal'),
        shellOn('node-x', { cluster: 'staging' }),
      ),
      { receivedAt: 0 },
    ).events
    expect(use?.agent).toEqual({ id: 'eksworkshop-eksctl/ns-a/app1', resolved_by: 'stitched' })
    expect(home?.agent).toEqual({ id: 'eksworkshop-eksctl/ns-a/app1', resolved_by: 'workload' })
    expect(twin?.agent).toEqual({ id: 'staging/ns-a/app1', resolved_by: 'workload' })
    expect(tagged?.agent).toEqual({ id: 'staging/ns-a/app1', resolved_by: 'workload' })
  })

  it('warns at start about a registry entry no Falco alert can ever match', () => {
    const warnings = registryWarnings([
      agent('by-sa', { k8s: [{ namespace: 'agents', service_account: 'data-cleaner' }] }),
      agent('by-role', { aws: ['arn:aws:iam::123456789012:role/x'] }),
      agent('fine', { k8s: [{ namespace: 'agents', pod: 'fine-*' }] }),
    ])
    expect(warnings).toEqual([
      expect.stringMatching(/^agents\[0\] \(by-sa\): .*service account/),
      expect.stringMatching(/^agents\[1\] \(by-role\): .*only AWS identities/),
    ])
  })

  it('learns from an issuing event that comes after its first use in the same request or file', () => {
    const decoder = createEventDecoder(config())
    const [use, issue] = decoder.decode('cloudtrail', items(podUse, issuePod), { receivedAt: 0 }).events
    expect(use?.agent).toEqual({ id: 'ns-a/app1', resolved_by: 'stitched' })
    expect(issue?.agent.id).toBe('ns-a/app1')
  })

  it('keeps the fallback id of a use published before its issuing event arrived; later uses are stitched', () => {
    const decoder = createEventDecoder(config())
    const early = decoder.decode('cloudtrail', items(podUse), { receivedAt: 0 }).events[0]
    expect(early?.agent).toEqual({
      id: 'arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role',
      resolved_by: 'principal',
    })
    decoder.decode('cloudtrail', items(issuePod), { receivedAt: 0 })
    const later = decoder.decode('cloudtrail', items({ ...podUse, eventID: 'use-pod-3' }), { receivedAt: 0 })
      .events[0]
    expect(later?.agent).toEqual({ id: 'ns-a/app1', resolved_by: 'stitched' })
  })

  it('names node instance-role sessions through the registry hosts, and Falco alerts through k8s and images', () => {
    const marketplace = fixtureLines('cloudtrail/awsdocs-marketplace-eks-irsa-examples.ndjson')[3] // session i-exampled859aa775c
    const falco = fixtureLines('falco/falco-website.ndjson')
    const decoder = createEventDecoder(
      config([
        ['node-a', { hosts: ['i-exampled859aa775c', 'falco-xczjd'] }],
        ['alpine-shell', { k8s: [{ namespace: 'default', pod: 'alpine*' }] }],
        ['api-contact', { images: ['devopps/falco-pod-delete*'] }],
      ]),
    )
    const [node] = decoder.decode('cloudtrail', items(marketplace), { receivedAt: 0 }).events
    expect(node?.agent).toEqual({ id: 'node-a', resolved_by: 'host' })
    const edge = decoder.decode('falco', items(falco[10], falco[8], falco[11]), { receivedAt: 0 }).events
    expect(edge.map((e) => e.agent)).toEqual([
      { id: 'falcoresponse/alpine', resolved_by: 'workload' },
      { id: 'api-contact', resolved_by: 'registry' },
      { id: 'alpine-shell', resolved_by: 'registry' },
    ])
  })

  it('falls back to the workload name without generated suffixes', () => {
    expect(workloadName('mysql-db-7d59548d75-wh44s')).toBe('mysql-db')
    expect(workloadName('falco-xczjd')).toBe('falco')
    expect(workloadName('web-0')).toBe('web')
    expect(workloadName('alpine')).toBe('alpine')
    const falco = fixtureLines('falco/falco-website.ndjson')
    const [event] = createEventDecoder(config()).decode('falco', items(falco[9]), { receivedAt: 0 }).events
    expect(event?.agent).toEqual({ id: 'default/alpine', resolved_by: 'workload' })
  })

  it('keeps learned links across a restart (data dir) and lists agents on GET /v1/agents', async () => {
    const first = await startHarness({ now: () => Date.parse('2024-04-16T10:00:00Z') })
    await first.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail',
      payload: JSON.stringify(issuePod),
      headers: auth,
    })
    const second = await startHarness({
      dataDir: first.dataDir,
      now: () => Date.parse('2024-04-16T10:00:00Z'),
    })
    await second.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail',
      payload: JSON.stringify(podUse),
      headers: auth,
    })
    expect(second.bus.records(eventsTopic)[0]?.value.agent).toEqual({
      id: 'ns-a/app1',
      resolved_by: 'stitched',
    })
    const agents = (await second.server.inject({ method: 'GET', url: '/v1/agents' })).json()
    expect(agents.items[0]).toMatchObject({
      id: 'ns-a/app1',
      resolved_by: 'stitched',
      events: { edge: 0, core: 1 },
      identifiers: { k8s_pod: ['app1'], access_key_id: ['ASIA37QFXJP5MQOWRZ6Q'] },
    })
  })

  it('asks for the ingest token on GET /v1/agents when the server listens beyond loopback', async () => {
    const h = await startHarness({ http: { host: '0.0.0.0' } })
    expect((await h.server.inject({ method: 'GET', url: '/v1/agents' })).statusCode).toBe(401)
    const res = await h.server.inject({ method: 'GET', url: '/v1/agents', headers: auth })
    expect(res.json()).toEqual({ items: [], count: 0, total: 0 })
  })

  it('gives an event that names no one an agent of its own, never shared, and leaves it out of /v1/agents', () => {
    const gcp = fixtureLines('falco/falcosecurity-plugins.ndjson').slice(0, 2)
    const decoder = createEventDecoder(config())
    const events = decoder.decode('falco', items(...gcp), { receivedAt: 0 }).events
    expect(events.map((e) => e.agent)).toEqual(
      events.map((e) => ({ id: `unresolved:${e.id}`, resolved_by: 'unresolved' })),
    )
    expect(decoder.agents()).toEqual([])
  })

  it('keeps the agents seen most recently once more than its limit have been seen', () => {
    const records = Array.from({ length: 25 }, (_, n) => ({
      ...stratus[0],
      eventID: `agent-limit-${n}`,
      eventTime: `2024-04-16T10:${String(n).padStart(2, '0')}:00Z`,
      userIdentity: {
        type: 'IAMUser',
        principalId: `AIDAMLQ9F6KHQ07JKA0W${n}`,
        arn: `arn:aws:iam::457448411975:user/user-${n}`,
        accountId: '457448411975',
        accessKeyId: `AKIANQQHHS551LWULI${String(n).padStart(2, '0')}`,
        userName: `user-${n}`,
      },
    }))
    const { drafts } = createEventDecoder(config()).normalize('cloudtrail', items(...records), {
      receivedAt: 0,
    })
    const resolver = createAgentResolver([], { maxAgents: 10 })
    for (const draft of drafts) resolver.resolve(draft)
    const ids = resolver.agents().map((a) => a.id)
    expect(ids.length).toBeLessThanOrEqual(10)
    expect(ids).toContain('arn:aws:iam::457448411975:user/user-24')
    expect(ids).not.toContain('arn:aws:iam::457448411975:user/user-14')
  })

  it('resolves the same agents without keeping summaries when asked not to (replay never reads them)', () => {
    const { drafts } = createEventDecoder(config()).normalize('cloudtrail', items(...stratus.slice(0, 5)), {
      receivedAt: 0,
    })
    const kept = createAgentResolver([])
    const none = createAgentResolver([], { summaries: false })
    const agentsOf = (resolver: typeof kept) => drafts.map((d) => resolver.resolve(structuredClone(d)).agent)
    expect(agentsOf(none)).toEqual(agentsOf(kept))
    expect(kept.agents().length).toBeGreaterThan(0)
    expect(none.agents()).toEqual([])
  })

  it("marks nerve's own revoker calls as by_nerve", () => {
    const decoder = createEventDecoder({
      agents: [],
      revoke: { self_identities: ['arn:aws:iam::457448411975:role/stratus-*'] },
    })
    const [event] = decoder.decode('cloudtrail', items(stratus[0]), { receivedAt: 0 }).events
    expect(event?.core?.by_nerve).toBe(true)
  })
})

describe('agent summaries under a hostile workload', () => {
  it('are bounded in bytes: long or endless new identifiers are not kept', () => {
    const decoder = createEventDecoder({ agents: [], revoke: { self_identities: [] } })
    const [record] = fixtureLines('cloudtrail/stratus-red-team-detonation-logs.ndjson')
    for (let i = 0; i < 200; i++) {
      // Same principal (one agent), a fresh 200-character session name every call: ARNs it chose.
      const arn = `arn:aws:sts::609418236337:assumed-role/data-cleaner/${String(i).padStart(200, 's')}`
      const forged = {
        ...record,
        eventID: `sess-${i}`,
        userIdentity: {
          type: 'AssumedRole',
          arn,
          accountId: '609418236337',
          sessionContext: {
            sessionIssuer: { type: 'Role', arn: 'arn:aws:iam::609418236337:role/data-cleaner' },
          },
        },
      }
      decoder.decode('cloudtrail', items(forged), { receivedAt: 0 })
    }
    const summaries = decoder.agents()
    const text = JSON.stringify(summaries.map((s) => s.identifiers)).length
    expect(summaries).toHaveLength(1)
    expect(summaries[0]?.events.core).toBe(200)
    expect(text).toBeLessThan(6_000)
  })
})

describe('the agents list under a flood of new names', () => {
  // The real "Terminal shell in container" alert from a pod the watched agent names, dated `minutesAhead`
  // after the alert's own time (inside max_future_skew: one hour by default).
  const shell = fixtureLines('falco/falco-website.ndjson')[9]
  const arrivedAt = Date.parse(shell.time)
  const alertFrom = (namespace: string, pod: string, minutesAhead = 0) => ({
    ...shell,
    time: new Date(arrivedAt + minutesAhead * 60_000).toISOString(),
    output_fields: { ...shell.output_fields, 'k8s.ns.name': namespace, 'k8s.pod.name': pod },
  })
  const registry = config([['data-cleaner', { k8s: [{ namespace: 'agents', pod: 'data-cleaner-*' }] }]])
  const resolveAll = (resolver: ReturnType<typeof createAgentResolver>, alerts: unknown[]) => {
    const decoder = createEventDecoder(registry)
    const { drafts } = decoder.normalize('falco', items(...alerts), { receivedAt: arrivedAt })
    for (const draft of drafts) resolver.resolve(draft)
  }

  it('keeps registry agents and the agents that arrived last, whatever time the flood is dated', () => {
    const resolver = createAgentResolver(registry.agents, { maxAgents: 10 })
    resolveAll(resolver, [
      alertFrom('agents', 'data-cleaner-7d59548d75-wh44s'),
      alertFrom('payments', 'worker'),
    ])
    // Pods named afresh on every alert, dated 59 minutes ahead: the first nine fill the list.
    const flood = (from: number, count: number) =>
      Array.from({ length: count }, (_, n) => alertFrom('scratch', `w${from + n}x`, 59))
    resolveAll(resolver, flood(0, 9))
    // The real worker alerts again, on time, then the flood goes on past the limit.
    resolveAll(resolver, [alertFrom('payments', 'worker')])
    resolveAll(resolver, flood(9, 5))
    const ids = resolver.agents().map((a) => a.id)
    expect(ids).toContain('data-cleaner')
    expect(ids).toContain('payments/worker')
    expect(ids.filter((id) => id !== 'data-cleaner').length).toBeLessThanOrEqual(10)
    expect(ids).toContain('scratch/w13x')
    expect(ids).not.toContain('scratch/w0x')
  })
})
