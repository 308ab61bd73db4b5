// A fallback id (the workload `namespace/workload`, the principal's ARN, `host:<name>`) is text the watched
// agent chooses: it names its pods and role sessions. A registry id of the same text must not share its
// windows with such a workload when the entry's `match` misses it: the agent would merge its alerts into
// the registered agent's windows (pairing them with that agent's CloudTrail calls) or, stitched, pass for
// the registered agent in the revoke policy. The fallback of that text, and only it, takes a marker.
import { describe, expect, it } from 'vitest'
import { createEventDecoder } from '../../../ingest/decode-events.ts'
import { createAgentResolver } from '../../../ingest/resolve-agent-identity.ts'
import { splitJsonItems } from '../../../ingest/split-json-items.ts'
import { agent, fixtureLines } from './ingest-harness.ts'

const items = (...records: unknown[]) =>
  splitJsonItems(records.map((r) => JSON.stringify(r)).join('\n'), { maxItems: 100, maxDepth: 64 })
const config = (agents: ReturnType<typeof agent>[]) => ({ agents, revoke: { self_identities: [] } })

// The real "Terminal shell in container" alert, from a pod the agent named `worker-7d59548d75-wh44s` in
// namespace `payments`: its fallback id is `payments/worker`.
const shellIn = (namespace: string, pod: string) => {
  const shell = fixtureLines('falco/falco-website.ndjson')[9]
  return {
    ...shell,
    output_fields: { ...shell.output_fields, 'k8s.ns.name': namespace, 'k8s.pod.name': pod },
  }
}
const stratus = fixtureLines('cloudtrail/stratus-red-team-detonation-logs.ndjson')
// IRSA issues ASIAIOSFODNN7EXAMPLE to service account agents/data-cleaner, then a call is signed with it.
const oidc = fixtureLines('cloudtrail/aws-iam-docs-current-oidc-example.ndjson')[0]
// The provider an EKS cluster's service-account token names (only an EKS issuer makes a workload).
const eksProvider =
  'arn:aws:iam::444455556666:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/A8242F25BFBB8F98F5321B2AE63C8B5C'
const irsaIssue = {
  ...oidc,
  userIdentity: {
    ...oidc.userIdentity,
    userName: 'system:serviceaccount:agents:data-cleaner',
    identityProvider: eksProvider,
  },
}
const irsaUse = fixtureLines('cloudtrail/awsdocs-marketplace-eks-irsa-examples.ndjson')[1]
const irsaLater = {
  ...irsaUse,
  eventTime: '2024-07-09T16:00:00Z',
  eventID: 'use-irsa-1',
  userIdentity: { ...irsaUse.userIdentity, accessKeyId: 'ASIAIOSFODNN7EXAMPLE' },
}
const role = 'arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role'

describe('fallback ids and registry ids', () => {
  it('never gives an unregistered workload the id of a registry entry that misses it', () => {
    // The operator named the entry after the workload it registers, in another namespace.
    const registry = config([
      agent('payments/worker', { k8s: [{ namespace: 'agents', pod: 'payments-worker-*' }] }),
    ])
    const decoder = createEventDecoder(registry)
    const [registered, forged] = decoder.decode(
      'falco',
      items(shellIn('agents', 'payments-worker-7f9c'), shellIn('payments', 'worker-7d59548d75-wh44s')),
      { receivedAt: 0 },
    ).events
    expect(registered?.agent).toEqual({ id: 'payments/worker', resolved_by: 'registry' })
    expect(forged?.agent).toEqual({ id: 'unregistered:payments/worker', resolved_by: 'workload' })
    // Without that registry id, the same workload keeps the id it always had.
    const plain = createEventDecoder(config([]))
    const [same] = plain.decode('falco', items(shellIn('payments', 'worker-7d59548d75-wh44s')), {
      receivedAt: 0,
    }).events
    expect(same?.agent).toEqual({ id: 'payments/worker', resolved_by: 'workload' })
  })

  it('never lets a stitched workload pass for a registry entry that misses it', () => {
    // `stitched` counts as named by the registry in the revoke policy (its budget, `protected`): the
    // workload id a credential link gives must not be a registry id the entry's match did not give.
    const registry = config([agent('agents/data-cleaner', { images: ['ghcr.io/acme/data-cleaner*'] })])
    const [issue, use] = createEventDecoder(registry).decode('cloudtrail', items(irsaIssue, irsaLater), {
      receivedAt: 0,
    }).events
    expect(issue?.agent).toEqual({ id: 'unregistered:agents/data-cleaner', resolved_by: 'workload' })
    expect(use?.agent).toEqual({ id: 'unregistered:agents/data-cleaner', resolved_by: 'stitched' })
  })

  it('marks a principal or host fallback equal to a registry id too', () => {
    const decoder = createEventDecoder(config([agent(role, { images: ['ghcr.io/acme/other*'] })]))
    const [call] = decoder.decode('cloudtrail', items(stratus[0]), { receivedAt: 0 }).events
    expect(call?.agent).toEqual({ id: `unregistered:${role}`, resolved_by: 'principal' })
    const resolver = createAgentResolver([agent('host:ip-10-0-1-23', { images: ['ghcr.io/acme/other*'] })])
    expect(resolver.resolve(hostOnly('ip-10-0-1-23')).agent).toEqual({
      id: 'unregistered:host:ip-10-0-1-23',
      resolved_by: 'host',
    })
  })

  it('refuses a registry id that begins with the marker, naming the entry', () => {
    const agents = [agent('data-cleaner', {}), agent('unregistered:payments/worker', { hosts: ['ip-*'] })]
    expect(() => createAgentResolver(agents)).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('agents[1] (unregistered:payments/worker)'),
      }),
    )
  })
})

/** An edge event naming only its host, as the decoder hands it to the resolver. */
function hostOnly(host: string) {
  const [event] = createEventDecoder(config([])).decode(
    'falco',
    items({ ...fixtureLines('falco/falco-website.ndjson')[9], hostname: host, output_fields: {} }),
    { receivedAt: 0 },
  ).events
  if (!event) throw new Error('no event')
  return { ...event, identity: { host } } as Parameters<ReturnType<typeof createAgentResolver>['resolve']>[0]
}
