// The start-up check an operator needs before trusting automated revokes: rules that say `revoke: true`
// while no webhook target is configured mean every revoke decision is suppressed (reason no_targets).
// Pure: the caller logs it.
import type { Config, RuleConfig } from '../schemas/types.ts'

export function revokeTargetWarning(
  revoke: Config['revoke'],
  rules: readonly Pick<RuleConfig, 'id' | 'revoke'>[],
): { rules: string[]; message: string } | undefined {
  if (revoke.webhooks.length > 0 || revoke.dry_run) return undefined
  const revoking = rules.filter((r) => r.revoke).map((r) => r.id)
  if (revoking.length === 0) return undefined
  return {
    rules: revoking,
    message:
      'Revoke rules have no webhook target: every revoke will be suppressed (no_targets). Set revoke.webhooks or NERVE_REVOKE_WEBHOOK_URL, or revoke.dry_run to record decisions only.',
  }
}
