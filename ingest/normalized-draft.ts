// What the normalizers produce: a NormalizedEvent still waiting for its agent (identity resolution
// names it), or the problems that make the item invalid. Both normalizers are pure.
import type { NormalizedEvent, Via } from '../schemas/types.ts'
import type { ValidationProblem } from '../schemas/validators.ts'
import type { WorkloadIssuer } from './eks-oidc-issuer.ts'

export type UnresolvedEvent = Omit<NormalizedEvent, 'agent'> & {
  /**
   * IRSA issuing calls: the web identity's OIDC issuer, which keys the workload's link caps per cluster.
   * For identity resolution only: resolve() removes it, so it is never published.
   */
  oidc_issuer?: string
}

export type NormalizeResult =
  | { ok: true; event: UnresolvedEvent }
  | { ok: false; problems: ValidationProblem[] }

export type NormalizeContext = {
  via: Via
  /** Wall-clock time of receipt, epoch ms (replay passes a constant: output must not depend on it). */
  receivedAt: number
  /** revoke.self_identities, compiled: true when a principal or role ARN is nerve's own revoker. */
  isSelfIdentity(arn: string): boolean
  /** Which OIDC issuers make a web identity a Kubernetes workload (default: EKS's issuer form). */
  workloadIssuer?: WorkloadIssuer
}
