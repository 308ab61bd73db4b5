// The fingerprint of a revoke webhook target's config entry, kept in the revoke outbox with a target a 410
// disabled: the target is enabled again once its entry no longer has it. Only the fields that name the
// endpoint and prove nerve to it go in (identityFields), not the tuning to which a later version may give a
// default (tuningFields): a new default would otherwise enable every disabled target once, on upgrade.
// An HMAC-SHA256 keyed by the data dir's key (revoke-target-key.ts), which the outbox does not hold: a copy
// of the outbox (a backup, a support bundle) tests no guess of a URL's access token; and since the secrets
// are among what it signs, a copy of the whole data dir tests none for a target that signs. Pure.
import { createHash, createHmac } from 'node:crypto'
import type { WebhookTargetConfig } from '../schemas/types.ts'

/** What names the endpoint (the URL with its query) and proves nerve to it: a change enables it again. */
export const identityFields = [
  'url',
  'secret',
  'secrets',
  'ca_file',
  'cert_file',
  'key_file',
] as const satisfies readonly (keyof WebhookTargetConfig)[]

/** How nerve sends to it: a change leaves it disabled. */
export const tuningFields = [
  'timeout',
  'concurrency',
] as const satisfies readonly (keyof WebhookTargetConfig)[]

/** `<key id>.<HMAC of the identity fields>`, base64url: the key id tells a fingerprint made under another key. */
export function targetFingerprint(config: WebhookTargetConfig, key: Buffer): string {
  const identity = JSON.stringify(identityFields.map((field) => config[field] ?? null))
  return `${keyId(key)}.${createHmac('sha256', key).update(identity).digest('base64url')}`
}

/**
 * How the fingerprint a target was disabled under compares with its entry now: `unknown` when it cannot
 * tell (none was kept, by an earlier version; or it was made under another key). The previous version's
 * (a plain SHA-256 of every field, no key id) is compared as that version made it, so that an upgrade
 * neither enables a target whose entry did not change nor keeps one disabled whose entry did.
 */
export function compareFingerprint(
  stored: string | null,
  config: WebhookTargetConfig,
  key: Buffer,
): 'same' | 'changed' | 'unknown' {
  if (stored === null) return 'unknown'
  if (!stored.includes('.')) return stored === plainSha256(config) ? 'same' : 'changed'
  if (!stored.startsWith(`${keyId(key)}.`)) return 'unknown'
  return stored === targetFingerprint(config, key) ? 'same' : 'changed'
}

function keyId(key: Buffer): string {
  return createHmac('sha256', key).update('nerve revoke target key id').digest('base64url').slice(0, 11)
}

/** The previous version's fingerprint: SHA-256 of the entry's fields in key order. Read to upgrade only. */
function plainSha256(config: WebhookTargetConfig): string {
  const fields = Object.entries(config).sort(([a], [b]) => (a < b ? -1 : 1))
  return createHash('sha256').update(JSON.stringify(fields)).digest('base64url')
}
