// Standard Webhooks 1.0 signing (symmetric scheme): HMAC-SHA256 over `${id}.${timestamp}.${body}` with
// the base64-decoded `whsec_` secret, sent as `v1,<base64>`; several secrets give several space-separated
// signatures so a receiver can rotate keys without downtime. Pure: no clock, no I/O.
import { createHmac } from 'node:crypto'
import { NerveError } from '../runtime/errors.ts'

const secretPrefix = 'whsec_'
const base64 = /^[A-Za-z0-9+/]+={0,2}$/
/** Standard Webhooks: "secret keys should be between 24 bytes and 64 bytes" (a guessable key signs forgeries). */
const minKeyBytes = 24

/** The HMAC key of a `whsec_<base64>` secret (the prefix is optional, as in the reference library). */
export function webhookSecretKey(secret: string): Buffer {
  const encoded = secret.startsWith(secretPrefix) ? secret.slice(secretPrefix.length) : secret
  if (!base64.test(encoded) || encoded.length % 4 !== 0) {
    throw new NerveError('CONFIG_INVALID', 'A revoke webhook secret must be whsec_ followed by base64.')
  }
  const key = Buffer.from(encoded, 'base64')
  if (key.length < minKeyBytes) {
    throw new NerveError(
      'CONFIG_INVALID',
      `A revoke webhook secret must decode to at least ${minKeyBytes} bytes (Standard Webhooks); this one decodes to ${key.length}. Generate one with: echo whsec_$(openssl rand -base64 32)`,
    )
  }
  return key
}

/** The `webhook-signature` header value: one `v1,<sig>` per key, space-separated. */
export function signWebhook(keys: readonly Buffer[], id: string, timestamp: number, body: string): string {
  const content = `${id}.${timestamp}.${body}`
  return keys.map((key) => `v1,${createHmac('sha256', key).update(content).digest('base64')}`).join(' ')
}
