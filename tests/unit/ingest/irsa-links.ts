// Identity links as ingest learns them: the IRSA link of the IAM doc example's key (its
// AssumeRoleWithWebIdentity record), and keys chained from it in the Stratus AssumeRole's shape.
import type { IdentityLink } from '../../../schemas/types.ts'

export const issuedLink: IdentityLink = {
  access_key_id: 'ASIAIOSFODNN7EXAMPLE',
  k8s_namespace: 'agents',
  k8s_service_account: 'data-cleaner',
  role_arn: 'arn:aws:iam::444455556666:role/FederatedWebIdentityRole',
  issued_at: Date.parse('2024-07-09T15:41:37Z'),
  expires: Date.parse('2024-07-09T16:41:37Z'),
}

/** The n-th key chained from issuedLink, issued n seconds after it. */
export const chainedLink = (n: number): IdentityLink => ({
  access_key_id: `ASIANQQHHS5${String(n).padStart(9, '0')}`,
  k8s_namespace: 'agents',
  k8s_service_account: 'data-cleaner',
  chained_from: issuedLink.access_key_id,
  issued_at: issuedLink.issued_at + n * 1000,
  expires: issuedLink.expires + n * 1000,
})
