// The fingerprint a 410-disabled target is kept under: what names the endpoint and proves nerve to it, keyed
// by the data dir's key; every field of a target's config entry is one or the other, so that a field a later
// version adds must be placed.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { WebhookTargetConfig } from '../../../schemas/types.ts'
import {
  compareFingerprint,
  identityFields,
  targetFingerprint,
  tuningFields,
} from '../../../sinks/target-fingerprint.ts'

const key = randomBytes(32)
const entry: WebhookTargetConfig = {
  url: 'https://soar.example/revoke?access_token=tok-4821',
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  ca_file: '/etc/nerve/soar-ca.pem',
  cert_file: '/etc/nerve/client.pem',
  key_file: '/etc/nerve/client.key',
  timeout: 10_000,
  concurrency: 4,
}

describe('target fingerprint', () => {
  it('places every field of a webhook target in the schema as identity or tuning', () => {
    const schema = JSON.parse(
      readFileSync(new URL('../../../schemas/config.schema.json', import.meta.url), 'utf8'),
    )
    const fields = Object.keys(schema.properties.revoke.properties.webhooks.items.properties)
    expect([...identityFields, ...tuningFields].sort()).toEqual(fields.sort())
  })

  it('changes with each identity field, not with tuning, nor with the order the fields are written in', () => {
    const fingerprint = targetFingerprint(entry, key)
    for (const field of identityFields) {
      const changed = { ...entry, [field]: field === 'secrets' ? ['whsec_other'] : `${entry[field]}x` }
      expect(compareFingerprint(fingerprint, changed, key)).toBe('changed')
    }
    const { url, ...rest } = entry
    expect(compareFingerprint(fingerprint, { ...rest, url, timeout: 30_000, concurrency: 1 }, key)).toBe(
      'same',
    )
  })

  it('cannot be compared under another key, nor when none was kept', () => {
    expect(compareFingerprint(targetFingerprint(entry, randomBytes(32)), entry, key)).toBe('unknown')
    expect(compareFingerprint(null, entry, key)).toBe('unknown')
  })
})
