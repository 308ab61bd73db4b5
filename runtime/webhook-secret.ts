// A revoke webhook's Standard Webhooks secret: `whsec_` and base64 of 24 to 64 random bytes. Checked once,
// when the config is loaded (config-checks.ts), and decoded into the HMAC key by each webhook target. Pure.
import { NerveError } from './errors.ts'

const secretPrefix = 'whsec_'
const base64 = /^[A-Za-z0-9+/]+={0,2}$/
/** Standard Webhooks: "secret keys should be between 24 bytes and 64 bytes" (a guessable key signs forgeries). */
const minKeyBytes = 24
const howToMakeOne = 'make one with: echo "whsec_$(openssl rand -base64 32)"'

/** What is wrong with a secret (the prefix is optional, as in the reference library), or undefined. */
export function webhookSecretProblem(secret: string): string | undefined {
  const encoded = secret.startsWith(secretPrefix) ? secret.slice(secretPrefix.length) : secret
  if (!base64.test(encoded) || encoded.length % 4 !== 0)
    return `must be whsec_ followed by base64 (${howToMakeOne})`
  const bytes = Buffer.from(encoded, 'base64').length
  if (bytes < minKeyBytes)
    return `must decode to at least ${minKeyBytes} bytes (Standard Webhooks); this one decodes to ${bytes} (${howToMakeOne})`
  return undefined
}

/** The HMAC key of a `whsec_<base64>` secret. */
export function webhookSecretKey(secret: string): Buffer {
  const problem = webhookSecretProblem(secret)
  if (problem) throw new NerveError('CONFIG_INVALID', `A revoke webhook secret ${problem}.`)
  return Buffer.from(secret.startsWith(secretPrefix) ? secret.slice(secretPrefix.length) : secret, 'base64')
}
