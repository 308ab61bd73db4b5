// The link table's bookkeeping under the shapes a flood takes: the same key learned again and again (a
// relearned or shared link replaces the one held), and a holder moving between two sizes at every link.
import { describe, expect, it } from 'vitest'
import { createCredentialLinks } from '../../../ingest/credential-links.ts'
import type { IdentityLink } from '../../../schemas/types.ts'

// The IRSA link of the IAM doc example's key (aws-iam-docs-current-oidc-example.ndjson), numbered.
const issued = (n: number, workload = 'data-cleaner'): IdentityLink => ({
  access_key_id: `ASIAIOSFODNN${String(n).padStart(8, '0')}`,
  k8s_namespace: 'agents',
  k8s_service_account: workload,
  role_arn: 'arn:aws:iam::444455556666:role/FederatedWebIdentityRole',
  issued_at: Date.parse('2024-07-09T15:41:37Z') + n * 1000,
  expires: Date.parse('2024-07-09T16:41:37Z') + n * 1000,
})
const holderOf = (link: IdentityLink) => `${link.k8s_namespace}/${link.k8s_service_account}`

describe('the credential link table', () => {
  it('counts a key learned again as one link, and forgets it in the order it was last learned', () => {
    const evicted: string[] = []
    const links = createCredentialLinks({
      maxLinks: 1_000,
      maxChainedPerWorkload: 10,
      maxIssuedPerWorkload: 10,
      holderOf,
      onEvicted: (count, holder) => evicted.push(`${holder} ${count}`),
    })
    for (let i = 0; i < 5_000; i++) links.set({ ...issued(0), expires: issued(0).expires + i })
    expect([...links.values()]).toHaveLength(1)
    for (let n = 1; n <= 10; n++) links.set(issued(n))
    expect(links.get(issued(0).access_key_id)).toBeUndefined()
    expect([...links.values()].map((l) => l.access_key_id)).toEqual(
      Array.from({ length: 10 }, (_, i) => issued(i + 1).access_key_id),
    )
    expect(evicted).toEqual(['agents/data-cleaner 1'])
  })

  it("takes a full table's links from the largest holder only, whichever holder grows", () => {
    const links = createCredentialLinks({
      maxLinks: 20,
      maxChainedPerWorkload: 100,
      maxIssuedPerWorkload: 100,
      holderOf,
    })
    for (let n = 0; n < 5; n++) links.set(issued(n, 'payments'))
    for (let n = 5; n < 1_000; n++) links.set(issued(n))
    const held = [...links.values()]
    expect(held.filter((l) => l.k8s_service_account === 'payments')).toHaveLength(5)
    expect(held).toHaveLength(20)
    expect(links.get(issued(999).access_key_id)).toBeDefined()
  })
})
