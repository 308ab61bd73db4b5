import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileK8sMatch } from '../../../ingest/match-k8s-entries.ts'
import { globToRegExp } from '../../../runtime/glob.ts'
import type { AgentConfig, IdentityFields } from '../../../schemas/types.ts'

type K8sEntry = NonNullable<AgentConfig['match']['k8s']>[number]
const agents = (lists: (K8sEntry[] | undefined)[]) => lists.map((k8s) => ({ match: k8s ? { k8s } : {} }))

/** What the registry answered before it was indexed: every agent's entries, one by one, in order. */
function naive(lists: (K8sEntry[] | undefined)[], id: IdentityFields): number {
  const value = {
    cluster: id.cluster,
    namespace: id.k8s_namespace,
    pod: id.k8s_pod,
    service_account: id.k8s_service_account,
  }
  const index = lists.findIndex((entries) =>
    (entries ?? []).some((entry) =>
      (Object.keys(entry) as (keyof K8sEntry)[]).every((key) => {
        const v = value[key]
        return v !== undefined && globToRegExp(entry[key] as string).test(v)
      }),
    ),
  )
  return index === -1 ? Number.POSITIVE_INFINITY : index
}

describe('compileK8sMatch', () => {
  it('answers the first agent listed, whichever of its keys an entry was filed under', () => {
    const lists: K8sEntry[][] = [
      [{ namespace: 'shop', pod: 'api-*' }],
      [{ pod: 'api-1' }],
      [{ namespace: 'shop' }],
      [{ namespace: 'shop', pod: '*-worker' }],
      [{ service_account: 'builder' }, { namespace: 'ci', pod: 'runner-*' }],
      [{}],
    ]
    const match = compileK8sMatch(agents(lists))
    const cases: [IdentityFields, number][] = [
      [{ k8s_namespace: 'shop', k8s_pod: 'api-1' }, 0],
      [{ k8s_namespace: 'other', k8s_pod: 'api-1' }, 1],
      [{ k8s_namespace: 'shop', k8s_pod: 'web-1' }, 2],
      [{ k8s_namespace: 'ci', k8s_pod: 'runner-x' }, 4],
      [{ k8s_namespace: 'ci', k8s_service_account: 'builder' }, 4],
      [{ k8s_namespace: 'ci', k8s_pod: 'x-worker' }, 5],
      [{ host: 'node-1' }, 5],
    ]
    for (const [identity, index] of cases) {
      expect(match(identity)).toBe(index)
      expect(naive(lists, identity)).toBe(index)
    }
    // Without the catch-all entry an identity with no Kubernetes field matches no one.
    expect(compileK8sMatch(agents(lists.slice(0, 5)))({ host: 'node-1' })).toBe(Number.POSITIVE_INFINITY)
  })

  it('answers what trying every entry of every agent in order answers', () => {
    const glob = fc.constantFrom('a', 'ab', 'a-1', 'b', '', 'a*', 'ab*', 'a-*', '*', 'a?', '*1', 'a*1', 'b*')
    const entry = fc.record(
      { cluster: glob, namespace: glob, pod: glob, service_account: glob },
      { requiredKeys: [] },
    )
    const lists = fc.array(fc.option(fc.array(entry, { maxLength: 3 }), { nil: undefined }), { maxLength: 8 })
    const value = fc.option(fc.constantFrom('a', 'ab', 'a-1', 'abc', 'b', 'b1', '', 'zz'), { nil: undefined })
    const identity = fc.record({
      cluster: value,
      k8s_namespace: value,
      k8s_pod: value,
      k8s_service_account: value,
    })
    fc.assert(
      fc.property(lists, identity, (list, raw) => {
        const id = Object.fromEntries(
          Object.entries(raw).filter(([, v]) => v !== undefined),
        ) as IdentityFields
        expect(compileK8sMatch(agents(list))(id)).toBe(naive(list, id))
      }),
      { numRuns: 2000 },
    )
  })
})
