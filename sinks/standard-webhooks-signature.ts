// Standard Webhooks 1.0 signing (symmetric scheme): HMAC-SHA256 over `${id}.${timestamp}.${body}` with
// the base64-decoded `whsec_` secret (runtime/webhook-secret.ts), sent as `v1,<base64>`; several secrets
// give several space-separated signatures so a receiver can rotate keys without downtime. Pure: no clock,
// no I/O.
import { createHmac } from 'node:crypto'

/** The `webhook-signature` header value: one `v1,<sig>` per key, space-separated. */
export function signWebhook(keys: readonly Buffer[], id: string, timestamp: number, body: string): string {
  const content = `${id}.${timestamp}.${body}`
  return keys.map((key) => `v1,${createHmac('sha256', key).update(content).digest('base64')}`).join(' ')
}
