// Which web identities are Kubernetes workloads (IRSA). An sts:AssumeRoleWithWebIdentity names a service
// account (`system:serviceaccount:NS:SA`) in its `sub`, but any OIDC provider the account trusts can put
// that text there: one the watched agent registered, with a role trusting it, would file its key under any
// workload it names. Only an EKS cluster's issuer signs service-account tokens, so only such an issuer
// makes a workload: the configured clusters' `oidc_issuer` when any cluster names one (the credential then
// takes that cluster), else any issuer of EKS's own form. Every other web identity is an ordinary caller.
import { NerveError } from '../runtime/errors.ts'

/** The cluster a workload's web identity came from; `cluster` absent when no cluster names its issuer. */
export type WorkloadIssuer = (issuer: string) => { cluster?: string } | undefined

/** EKS's issuer form, as IAM's provider ARN names it (no scheme): `oidc.eks.<region>.amazonaws.com/id/<id>`. */
const eksIssuer = /^oidc\.eks\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?\/id\/[A-Za-z0-9]+$/

/** `arn:aws:iam::123456789012:oidc-provider/oidc.eks…/id/…` → `oidc.eks…/id/…`. */
export function issuerOfProvider(arn: unknown): string | undefined {
  if (typeof arn !== 'string') return undefined
  return /^arn:[^:]+:iam::[0-9]*:oidc-provider\/(.+)$/.exec(arn)?.[1]
}

/** Throws CONFIG_INVALID when two clusters name the same issuer: its credentials would have two clusters. */
export function createWorkloadIssuer(
  clusters: readonly { name: string; oidc_issuer?: string }[] = [],
): WorkloadIssuer {
  const named = new Map<string, string>()
  clusters.forEach((cluster, index) => {
    if (cluster.oidc_issuer === undefined) return
    const other = named.get(cluster.oidc_issuer)
    if (other !== undefined) {
      throw new NerveError(
        'CONFIG_INVALID',
        `clusters[${index}] (${cluster.name}): oidc_issuer ${cluster.oidc_issuer} is already the issuer of cluster ${other}; an issuer belongs to one cluster.`,
      )
    }
    named.set(cluster.oidc_issuer, cluster.name)
  })
  if (named.size === 0) return (issuer) => (eksIssuer.test(issuer) ? {} : undefined)
  return (issuer) => {
    const cluster = named.get(issuer)
    return cluster === undefined ? undefined : { cluster }
  }
}

/**
 * Once one cluster names its `oidc_issuer`, only the named issuers make IRSA workloads: the clusters that
 * name none lose theirs (their IRSA calls are named by their role). The warning names those clusters.
 */
export function partialIssuerWarning(
  clusters: readonly { name: string; oidc_issuer?: string }[] = [],
): string | undefined {
  const without = clusters.filter((c) => c.oidc_issuer === undefined).map((c) => c.name)
  if (without.length === 0 || without.length === clusters.length) return undefined
  return `Clusters without oidc_issuer while another names one: their IRSA credentials are no workload's, and their calls are named by their role: ${without.join(', ')}. Set oidc_issuer on every cluster, or on none.`
}
