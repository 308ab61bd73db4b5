// The watched agent against identity resolution: it calls AWS with its own credentials and chooses its
// web-identity tokens (when it controls an OIDC provider), the roles it chains into and how many keys it
// asks STS for. None of that may file its calls under another workload, or lose its own.
//
// The IRSA issuing events are the current IAM doc example (aws-iam-docs-current-oidc-example.ndjson) with
// the web-identity user, principal and provider an EKS service account token gives (the provider form of
// the greenpau argo-plugin IRSA record in /work/shared/samples); later calls are the Marketplace IRSA
// call and the Stratus AssumeRole (awsdocs-marketplace-eks-irsa-examples.ndjson,
// stratus-red-team-detonation-logs.ndjson) signed with the issued keys.
import { describe, expect, it } from 'vitest'
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import { createAgentResolver } from '../../../ingest/resolve-agent-identity.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import type { AgentConfig } from '../../../schemas/types.ts'
import { agent, auth, fixtureLines, startHarness } from './ingest-harness.ts'

const oidc = fixtureLines('cloudtrail/aws-iam-docs-current-oidc-example.ndjson')[0]
const marketplace = fixtureLines('cloudtrail/awsdocs-marketplace-eks-irsa-examples.ndjson')[1]
const stratusAssume = fixtureLines('cloudtrail/stratus-red-team-detonation-logs.ndjson')[31]
const shell = fixtureLines('falco/falco-website.ndjson')[9]

const account = '444455556666'
const prodIssuer = 'oidc.eks.us-east-2.amazonaws.com/id/A8242F25BFBB8F98F5321B2AE63C8B5C'
const stagingIssuer = 'oidc.eks.us-east-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE'
const attackerIssuer = 'token.attacker.example'
const roleArn = (name: string) => `arn:aws:iam::${account}:role/${name}`

/** An AssumeRoleWithWebIdentity by `sub` through `issuer`, issuing `key` for an hour from `time`. */
const webIdentity = (o: { issuer: string; sub: string; key: string; time: string; role: string }) => {
  const provider = `arn:aws:iam::${account}:oidc-provider/${o.issuer}`
  const expires = new Date(Date.parse(o.time) + 3_600_000).toUTCString()
  return {
    ...oidc,
    eventID: `issue-${o.key}`,
    eventTime: o.time,
    userIdentity: {
      type: 'WebIdentityUser',
      principalId: `${provider}:sts.amazonaws.com:${o.sub}`,
      userName: o.sub,
      identityProvider: provider,
    },
    requestParameters: { ...oidc.requestParameters, roleArn: roleArn(o.role) },
    responseElements: {
      ...oidc.responseElements,
      credentials: { ...oidc.responseElements.credentials, accessKeyId: o.key, expiration: expires },
      subjectFromWebIdentityToken: o.sub,
      provider,
      audience: 'sts.amazonaws.com',
    },
  }
}
const session = (role: string, key: string) => ({
  type: 'AssumedRole',
  principalId: `AROA123456789EXAMPLE:botocore-session-1111111111`,
  arn: `arn:aws:sts::${account}:assumed-role/${role}/botocore-session-1111111111`,
  accountId: account,
  accessKeyId: key,
  sessionContext: {
    sessionIssuer: {
      type: 'Role',
      principalId: 'AROA123456789EXAMPLE',
      arn: roleArn(role),
      accountId: account,
    },
  },
})
/** A later call signed with `key` of a session of `role`. */
const callWith = (key: string, role: string, time: string, id: string) => ({
  ...marketplace,
  eventID: id,
  eventTime: time,
  recipientAccountId: account,
  userIdentity: session(role, key),
})
/** An sts:AssumeRole into `into` signed with `key`, issuing `issued`. */
const chain = (key: string, role: string, into: string, issued: string, time: string) => ({
  ...stratusAssume,
  eventID: `chain-${issued}`,
  eventTime: time,
  recipientAccountId: account,
  userIdentity: session(role, key),
  requestParameters: { roleArn: roleArn(into), roleSessionName: `s-${issued}` },
  resources: [{ ARN: roleArn(into), accountId: account, type: 'AWS::IAM::Role' }],
  responseElements: {
    ...stratusAssume.responseElements,
    credentials: {
      accessKeyId: issued,
      sessionToken: 'x',
      expiration: new Date(Date.parse(time) + 3_600_000).toUTCString(),
    },
  },
})
const alertIn = (namespace: string, pod: string, hostname: string) => ({
  ...shell,
  hostname,
  time: '2024-07-09T15:50:00.000000000Z',
  output_fields: { ...shell.output_fields, 'k8s.ns.name': namespace, 'k8s.pod.name': pod },
})
const items = (...records: unknown[]) =>
  splitJsonItems(records.map((r) => JSON.stringify(r)).join('\n'), { maxItems: 100, maxDepth: 64 })
const decoderWith = (
  agents: AgentConfig[],
  clusters?: { name: string; hosts: string[]; oidc_issuer?: string }[],
) => createEventDecoder({ agents, revoke: { self_identities: [] }, clusters })
const registry = [
  agent('data-cleaner', {
    k8s: [
      { namespace: 'agents', pod: 'data-cleaner-*' },
      { namespace: 'agents', service_account: 'data-cleaner' },
    ],
  }),
  { ...agent('payments', { k8s: [{ namespace: 'payments', service_account: 'worker' }] }), protected: true },
]

describe('a web identity is a workload only when an EKS cluster issued it', () => {
  it('never stitches a key issued through an OIDC provider the agent controls to the workload its token names', () => {
    const decoder = decoderWith(registry)
    const forged = webIdentity({
      issuer: attackerIssuer,
      sub: 'system:serviceaccount:payments:worker',
      key: 'ASIAEVILEXAMPLE00001',
      time: '2024-07-09T15:41:37Z',
      role: 'ci-deployer',
    })
    const write = callWith('ASIAEVILEXAMPLE00001', 'ci-deployer', '2024-07-09T15:55:00Z', 'evil-write')
    const [issue, use] = decoder.decode('cloudtrail', items(forged, write), { receivedAt: 0 }).events
    expect(issue?.agent).toEqual({ id: roleArn('ci-deployer'), resolved_by: 'principal' })
    expect(issue?.identity.k8s_service_account).toBeUndefined()
    expect(use?.agent).toEqual({ id: roleArn('ci-deployer'), resolved_by: 'principal' })
    expect(decoder.links()).toEqual([])
  })

  it("stitches a key issued by an EKS cluster's issuer when no cluster names one", () => {
    const decoder = decoderWith(registry)
    const irsa = webIdentity({
      issuer: prodIssuer,
      sub: 'system:serviceaccount:agents:data-cleaner',
      key: 'ASIAIRSAEXAMPLE00001',
      time: '2024-07-09T15:41:37Z',
      role: 'data-cleaner',
    })
    const write = callWith('ASIAIRSAEXAMPLE00001', 'data-cleaner', '2024-07-09T15:55:00Z', 'irsa-write')
    const [, use] = decoder.decode('cloudtrail', items(irsa, write), { receivedAt: 0 }).events
    expect(use?.agent).toEqual({ id: 'data-cleaner', resolved_by: 'stitched' })
  })

  it("counts only the configured clusters' issuers once one names its issuer, and the call takes that cluster", () => {
    const decoder = decoderWith(
      [],
      [
        { name: 'prod', hosts: ['ip-10-0-*'], oidc_issuer: prodIssuer },
        { name: 'staging', hosts: ['ip-10-9-*'] },
      ],
    )
    const fromProd = webIdentity({
      issuer: prodIssuer,
      sub: 'system:serviceaccount:payments:worker',
      key: 'ASIAPRODEXAMPLE00001',
      time: '2024-07-09T15:41:37Z',
      role: 'worker',
    })
    // Another EKS cluster (an account's own, or one the agent made) names the same service account.
    const fromOther = webIdentity({
      issuer: stagingIssuer,
      sub: 'system:serviceaccount:payments:worker',
      key: 'ASIAOTHREXAMPLE00001',
      time: '2024-07-09T15:41:38Z',
      role: 'worker',
    })
    const calls = decoder.decode(
      'cloudtrail',
      items(
        fromProd,
        fromOther,
        callWith('ASIAPRODEXAMPLE00001', 'worker', '2024-07-09T15:55:00Z', 'prod-write'),
        callWith('ASIAOTHREXAMPLE00001', 'worker', '2024-07-09T15:55:01Z', 'other-write'),
      ),
      { receivedAt: 0 },
    ).events
    const [alert] = decoder.decode(
      'falco',
      items(alertIn('payments', 'worker', 'ip-10-0-1-23.ec2.internal')),
      {
        receivedAt: 0,
      },
    ).events
    expect(calls[2]?.agent).toEqual({ id: 'prod/payments/worker', resolved_by: 'stitched' })
    expect(alert?.agent).toEqual({ id: 'prod/payments/worker', resolved_by: 'workload' })
    expect(calls[3]?.agent).toEqual({ id: roleArn('worker'), resolved_by: 'principal' })
  })

  it('joins IRSA calls and alerts with clusters but no issuer through a registry entry naming no cluster for the service account', () => {
    // The IRSA call cannot name its cluster: an entry whose service account names no cluster matches it.
    const decoder = decoderWith(
      [
        agent('payments', {
          k8s: [
            { cluster: 'prod', namespace: 'payments', pod: 'worker-*' },
            { namespace: 'payments', service_account: 'worker' },
          ],
        }),
      ],
      [{ name: 'prod', hosts: ['ip-10-0-*'] }],
    )
    const irsa = webIdentity({
      issuer: prodIssuer,
      sub: 'system:serviceaccount:payments:worker',
      key: 'ASIAPRODEXAMPLE00002',
      time: '2024-07-09T15:41:37Z',
      role: 'worker',
    })
    const write = callWith('ASIAPRODEXAMPLE00002', 'worker', '2024-07-09T15:55:00Z', 'irsa-write-2')
    const [, use] = decoder.decode('cloudtrail', items(irsa, write), { receivedAt: 0 }).events
    const [alert] = decoder.decode(
      'falco',
      items(alertIn('payments', 'worker-6b7d9c5f4-q8t2m', 'ip-10-0-1-23.ec2.internal')),
      { receivedAt: 0 },
    ).events
    expect(use?.agent).toEqual({ id: 'payments', resolved_by: 'stitched' })
    expect(alert?.agent).toEqual({ id: 'payments', resolved_by: 'registry' })
  })
})

describe('who holds the credentials wins over the registry', () => {
  const irsa = webIdentity({
    issuer: prodIssuer,
    sub: 'system:serviceaccount:agents:data-cleaner',
    key: 'ASIAIRSAEXAMPLE00002',
    time: '2024-07-09T15:41:37Z',
    role: 'data-cleaner',
  })
  const intoDeployer = chain(
    'ASIAIRSAEXAMPLE00002',
    'data-cleaner',
    'payments-deployer',
    'ASIACHAINEXAMPLE0001',
    '2024-07-09T15:45:00Z',
  )
  const write = callWith('ASIACHAINEXAMPLE0001', 'payments-deployer', '2024-07-09T15:55:00Z', 'chained-write')
  const deployerOwn = callWith(
    'ASIADEPLEXAMPLE00001',
    'payments-deployer',
    '2024-07-09T15:56:00Z',
    'own-write',
  )

  it("files a write made with a key chained into another agent's registered role under the agent holding the key", () => {
    const paymentsByRole = {
      ...agent('payments', {
        k8s: [{ namespace: 'payments', pod: 'worker-*' }],
        aws: [roleArn('payments-deployer')],
      }),
      protected: true,
    }
    for (const agents of [[registry[0] as AgentConfig, paymentsByRole], [paymentsByRole]]) {
      const decoder = decoderWith(agents)
      const [, chained, used, own] = decoder.decode(
        'cloudtrail',
        items(irsa, intoDeployer, write, deployerOwn),
        {
          receivedAt: 0,
        },
      ).events
      const holder = agents.length === 2 ? 'data-cleaner' : 'agents/data-cleaner'
      expect(chained?.agent).toEqual({ id: holder, resolved_by: 'stitched' })
      expect(used?.agent).toEqual({ id: holder, resolved_by: 'stitched' })
      // A session of the role that no learned link explains is still the registered role's agent.
      expect(own?.agent).toEqual({ id: 'payments', resolved_by: 'registry' })
    }
  })

  it('names a stitched call by the registry entry of its holder: by workload, or by the role its holder was issued', () => {
    const byRole = decoderWith([agent('cleaner-by-role', { aws: [roleArn('data-cleaner')] })])
    const direct = callWith('ASIAIRSAEXAMPLE00002', 'data-cleaner', '2024-07-09T15:50:00Z', 'direct')
    const [, call] = byRole.decode('cloudtrail', items(irsa, direct), { receivedAt: 0 }).events
    expect(call?.agent).toEqual({ id: 'cleaner-by-role', resolved_by: 'stitched' })
    const byWorkload = decoderWith(registry)
    const [, again] = byWorkload.decode('cloudtrail', items(irsa, direct), { receivedAt: 0 }).events
    expect(again?.agent).toEqual({ id: 'data-cleaner', resolved_by: 'stitched' })
  })
})

describe('chained links are capped per workload', () => {
  const issue = (ns: string, sa: string, key: string) =>
    webIdentity({
      issuer: prodIssuer,
      sub: `system:serviceaccount:${ns}:${sa}`,
      key,
      time: '2024-07-09T15:41:37Z',
      role: sa,
    })

  it("lets one workload's chaining evict only its own oldest chained links, never its issuing link or another workload's", () => {
    let evicted = 0
    const resolver = createAgentResolver([], {
      maxChainedLinksPerWorkload: 10,
      maxLinks: 40,
      onLinksEvicted: (count) => {
        evicted += count
      },
    })
    const decoder = createEventDecoder({ agents: [], revoke: { self_identities: [] } })
    const feed = (...records: unknown[]) => {
      const { drafts } = decoder.normalize('cloudtrail', items(...records), { receivedAt: 0 })
      return drafts.map((draft) => {
        resolver.learn(draft)
        return resolver.resolve(draft)
      })
    }
    feed(
      issue('payments', 'worker', 'ASIAPAYSEXAMPLE00001'),
      chain('ASIAPAYSEXAMPLE00001', 'worker', 'reports', 'ASIAPAYCHAINEXAMPLE1', '2024-07-09T15:42:00Z'),
      issue('agents', 'data-cleaner', 'ASIAIRSAEXAMPLE00003'),
    )
    for (let i = 0; i < 100; i++) {
      const time = new Date(Date.parse('2024-07-09T15:43:00Z') + i * 1000).toISOString().replace('.000', '')
      const key = `ASIAFLOOD${String(i).padStart(11, '0')}`
      feed(chain('ASIAIRSAEXAMPLE00003', 'data-cleaner', 'scratch', key, time))
    }
    const [own, payments, chained, newest, oldest] = feed(
      callWith('ASIAIRSAEXAMPLE00003', 'data-cleaner', '2024-07-09T15:50:00Z', 'own'),
      callWith('ASIAPAYSEXAMPLE00001', 'worker', '2024-07-09T15:50:01Z', 'payments'),
      callWith('ASIAPAYCHAINEXAMPLE1', 'reports', '2024-07-09T15:50:02Z', 'payments-chained'),
      callWith('ASIAFLOOD00000000099', 'scratch', '2024-07-09T15:50:03Z', 'newest'),
      callWith('ASIAFLOOD00000000000', 'scratch', '2024-07-09T15:50:04Z', 'oldest'),
    )
    expect(own?.agent).toEqual({ id: 'agents/data-cleaner', resolved_by: 'stitched' })
    expect(payments?.agent).toEqual({ id: 'payments/worker', resolved_by: 'stitched' })
    expect(chained?.agent).toEqual({ id: 'payments/worker', resolved_by: 'stitched' })
    expect(newest?.agent).toEqual({ id: 'agents/data-cleaner', resolved_by: 'stitched' })
    expect(oldest?.agent).toEqual({ id: roleArn('scratch'), resolved_by: 'principal' })
    expect(resolver.links().length).toBe(3 + 10)
    expect(evicted).toBe(90)
  })

  /** A resolver fed the way ingest feeds it; `evicted` collects what it forgets, per workload. */
  const resolverWith = (options: Parameters<typeof createAgentResolver>[1]) => {
    const evicted = new Map<string, number>()
    const resolver = createAgentResolver([], {
      ...options,
      onLinksEvicted: (count, workload) => evicted.set(workload, (evicted.get(workload) ?? 0) + count),
    })
    const decoder = createEventDecoder({ agents: [], revoke: { self_identities: [] } })
    const feed = (...records: unknown[]) => {
      const { drafts } = decoder.normalize('cloudtrail', items(...records), { receivedAt: 0 })
      return drafts.map((draft) => {
        resolver.learn(draft)
        return resolver.resolve(draft)
      })
    }
    return { resolver, feed, evicted }
  }
  const at = (i: number) =>
    new Date(Date.parse('2024-07-09T15:43:00Z') + i * 1000).toISOString().replace('.000', '')
  /** data-cleaner asks STS for `count` keys with its own service-account token. */
  const issuingFlood = (count: number) =>
    Array.from({ length: count }, (_, i) =>
      webIdentity({
        issuer: prodIssuer,
        sub: 'system:serviceaccount:agents:data-cleaner',
        key: `ASIAWEBFLOOD${String(i).padStart(8, '0')}`,
        time: at(i),
        role: 'data-cleaner',
      }),
    )
  const paymentsLinks = [
    issue('payments', 'worker', 'ASIAPAYSEXAMPLE00001'),
    chain('ASIAPAYSEXAMPLE00001', 'worker', 'reports', 'ASIAPAYCHAINEXAMPLE1', '2024-07-09T15:42:00Z'),
  ]
  const paymentsCalls = () => [
    callWith('ASIAPAYSEXAMPLE00001', 'worker', '2024-07-09T15:50:01Z', 'payments'),
    callWith('ASIAPAYCHAINEXAMPLE1', 'reports', '2024-07-09T15:50:02Z', 'payments-chained'),
  ]

  it("caps a workload's issuing links: its AssumeRoleWithWebIdentity loop evicts only its own oldest", () => {
    const { resolver, feed, evicted } = resolverWith({ maxIssuedLinksPerWorkload: 10, maxLinks: 40 })
    feed(...paymentsLinks)
    for (const record of issuingFlood(100)) feed(record)
    const [payments, chained, newest, oldest] = feed(
      ...paymentsCalls(),
      callWith('ASIAWEBFLOOD00000099', 'data-cleaner', '2024-07-09T15:50:03Z', 'newest'),
      callWith('ASIAWEBFLOOD00000000', 'data-cleaner', '2024-07-09T15:50:04Z', 'oldest'),
    )
    expect(payments?.agent).toEqual({ id: 'payments/worker', resolved_by: 'stitched' })
    expect(chained?.agent).toEqual({ id: 'payments/worker', resolved_by: 'stitched' })
    expect(newest?.agent).toEqual({ id: 'agents/data-cleaner', resolved_by: 'stitched' })
    expect(oldest?.agent).toEqual({ id: roleArn('data-cleaner'), resolved_by: 'principal' })
    expect(resolver.links().length).toBe(2 + 10)
    expect([...evicted.values()]).toEqual([90])
    expect([...evicted.keys()][0]).toContain('agents/data-cleaner')
  })

  it("takes from the workload holding the most links when the table is full, never another workload's", () => {
    const { resolver, feed, evicted } = resolverWith({ maxLinks: 40 })
    feed(...paymentsLinks)
    for (const record of issuingFlood(200)) feed(record)
    const [payments, chained, newest] = feed(
      ...paymentsCalls(),
      callWith('ASIAWEBFLOOD00000199', 'data-cleaner', '2024-07-09T15:50:03Z', 'newest'),
    )
    expect(payments?.agent).toEqual({ id: 'payments/worker', resolved_by: 'stitched' })
    expect(chained?.agent).toEqual({ id: 'payments/worker', resolved_by: 'stitched' })
    expect(newest?.agent).toEqual({ id: 'agents/data-cleaner', resolved_by: 'stitched' })
    expect(resolver.links().length).toBe(40)
    expect(evicted.size).toBe(1)
    expect([...evicted.values()]).toEqual([162])
  })

  it("keeps two clusters' copies of a workload apart without oidc_issuer: one's chaining never evicts the other's links", () => {
    const { feed } = resolverWith({ maxChainedLinksPerWorkload: 10 })
    const sub = 'system:serviceaccount:payments:worker'
    const [prod] = feed(
      webIdentity({ issuer: prodIssuer, sub, key: 'ASIAPRODEXAMPLE00001', time: at(0), role: 'worker' }),
      chain('ASIAPRODEXAMPLE00001', 'worker', 'reports', 'ASIAPRODCHAINEXAMPL1', at(1)),
      webIdentity({ issuer: stagingIssuer, sub, key: 'ASIASTAGEXAMPLE00001', time: at(2), role: 'worker' }),
    )
    for (let i = 0; i < 100; i++) {
      const key = `ASIASTAGCHAIN${String(i).padStart(7, '0')}`
      feed(chain('ASIASTAGEXAMPLE00001', 'worker', 'scratch', key, at(3 + i)))
    }
    const [prodChained, stagingOldest] = feed(
      callWith('ASIAPRODCHAINEXAMPL1', 'reports', '2024-07-09T15:50:01Z', 'prod-chained'),
      callWith('ASIASTAGCHAIN0000000', 'scratch', '2024-07-09T15:50:02Z', 'staging-oldest'),
    )
    expect(prodChained?.agent).toEqual({ id: 'payments/worker', resolved_by: 'stitched' })
    // The issuer keys the cap only: the published event carries no field of it.
    expect(Object.keys(prod ?? {})).not.toContain('oidc_issuer')
    expect(stagingOldest?.agent).toEqual({ id: roleArn('scratch'), resolved_by: 'principal' })
  })

  it('counts the links it forgets in nerve_ingest_identity_links_evicted_total', async () => {
    const h = await startHarness({ maxChainedLinks: 1 })
    const records = [
      issue('agents', 'data-cleaner', 'ASIAIRSAEXAMPLE00004'),
      ...['ASIACHAINEXAMPLE0011', 'ASIACHAINEXAMPLE0012', 'ASIACHAINEXAMPLE0013'].map((key, i) =>
        chain('ASIAIRSAEXAMPLE00004', 'data-cleaner', 'scratch', key, `2024-07-09T15:4${3 + i}:00Z`),
      ),
    ]
    const res = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail',
      payload: JSON.stringify({ Records: records }),
      headers: auth,
    })
    expect(res.statusCode).toBe(202)
    const text = await h.rt.metrics.render()
    expect(text).toMatch(/^nerve_ingest_identity_links_evicted_total 2$/m)
    expect(text).toMatch(/^nerve_ingest_identity_links_learned_total 4$/m)
    // One warning naming the workload, not one per link forgotten.
    const warnings = h.rt.logs.filter((l) => /oldest credential links/.test(l.msg))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({ level: 'warn', evicted: 1 })
    expect(String(warnings[0]?.workload)).toContain('agents/data-cleaner')
  })
})

describe('access keys a workload creates', () => {
  // The real Stratus backdoor record: iam:CreateAccessKey for malicious-iam-user (line 296), then that
  // user's iam:AttachUserPolicy (line 295). Here the creator is a platform workload running with IRSA
  // (an ACK IAM controller, Crossplane) that creates keys for the users it manages and hands them over.
  const stratus = fixtureLines('cloudtrail/stratus-red-team-detonation-logs.ndjson')
  const create = stratus[295]
  const attach = stratus[294]
  const minted = create.responseElements.accessKey.accessKeyId
  const user = `arn:aws:iam::${create.recipientAccountId}:user/malicious-iam-user`
  const irsa = webIdentity({
    issuer: prodIssuer,
    sub: 'system:serviceaccount:ack-system:ack-iam-controller',
    key: 'ASIAIRSAEXAMPLE00005',
    time: '2024-08-01T13:20:00Z',
    role: 'ack-iam-controller',
  })
  const byController = { ...create, userIdentity: session('ack-iam-controller', 'ASIAIRSAEXAMPLE00005') }
  const byUser = {
    ...attach,
    eventTime: '2024-08-03T09:00:00Z',
    userIdentity: {
      type: 'IAMUser',
      principalId: 'AIDAEXAMPLEMALICIOUS',
      arn: user,
      accountId: create.recipientAccountId,
      accessKeyId: minted,
      userName: 'malicious-iam-user',
    },
  }

  it("keeps the calls made with a created key the key's user's, as the registry lists it, not the creator's", () => {
    const consumer = agent('orders-app', { access_keys: [minted], aws: [user] })
    const decoder = decoderWith([...registry, consumer])
    const [, created, used] = decoder.decode('cloudtrail', items(irsa, byController, byUser), {
      receivedAt: 0,
    }).events
    // The creation itself is the controller's (what runtime-alert-then-new-credentials pairs with its alerts).
    expect(created?.agent).toEqual({ id: 'ack-system/ack-iam-controller', resolved_by: 'stitched' })
    expect(created?.core?.credentials).toBeUndefined()
    expect(used?.agent).toEqual({ id: 'orders-app', resolved_by: 'registry' })
    const unlisted = decoderWith(registry)
    const [, , other] = unlisted.decode('cloudtrail', items(irsa, byController, byUser), {
      receivedAt: 0,
    }).events
    expect(other?.agent).toEqual({ id: user, resolved_by: 'principal' })
  })
})
