import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { webhookSecretKey } from '../../../runtime/webhook-secret.ts'
import { signWebhook } from '../../../sinks/standard-webhooks-signature.ts'

// The test vector of standard-webhooks' own JavaScript library (webhook.test.ts), see notes/sinks.md §4.1.
const vector = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
}

describe('Standard Webhooks signature', () => {
  it('reproduces the reference test vector', () => {
    const key = webhookSecretKey(vector.secret)
    expect(signWebhook([key], vector.id, vector.timestamp, vector.body)).toBe(vector.signature)
  })

  it('signs with every secret during a rotation, space-separated, old and new both verifiable', () => {
    const next = `whsec_${Buffer.from('a-second-secret-of-24-bytes!').toString('base64')}`
    const header = signWebhook(
      [webhookSecretKey(vector.secret), webhookSecretKey(next)],
      vector.id,
      vector.timestamp,
      vector.body,
    )
    const [first, second] = header.split(' ')
    expect(first).toBe(vector.signature)
    const expected = createHmac('sha256', Buffer.from('a-second-secret-of-24-bytes!'))
      .update(`${vector.id}.${vector.timestamp}.${vector.body}`)
      .digest('base64')
    expect(second).toBe(`v1,${expected}`)
  })

  it('accepts a secret without the whsec_ prefix, as the reference library does', () => {
    const bare = vector.secret.slice('whsec_'.length)
    expect(webhookSecretKey(bare)).toEqual(webhookSecretKey(vector.secret))
  })

  it('rejects a secret that is not base64, naming the rule', () => {
    expect(() => webhookSecretKey('whsec_not base64!')).toThrow(/whsec_ followed by base64/)
    expect(() => webhookSecretKey('whsec_')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
    // A 3-byte key: anyone can try every key and sign forged revokes.
    expect(() => webhookSecretKey('whsec_AAAA')).toThrow(/at least 24 bytes.*decodes to 3/)
    expect(webhookSecretKey(`whsec_${Buffer.alloc(24, 7).toString('base64')}`)).toHaveLength(24)
  })
})
