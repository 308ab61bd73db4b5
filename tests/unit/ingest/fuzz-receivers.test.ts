// Random and mutated bodies at every receiver: no crash, no 5xx, and nothing invalid reaches the bus.

import { gzipSync } from 'node:zlib'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { eventsTopic } from '../../../bus/topics.ts'
import { validateNormalizedEvent } from '../../../schemas/input-validators.ts'
import { auth, fixture, startHarness, token } from './ingest-harness.ts'

const seeds = [
  ...fixture('falco/falco-website.ndjson').toString().trim().split('\n').slice(0, 12),
  ...fixture('cloudtrail/aws-samples-eks-pod-identity.ndjson').toString().trim().split('\n'),
  fixture('cloudtrail/envelopes/eventbridge-aws-api-call-via-cloudtrail-awsdocs.json').toString(),
  fixture('cloudtrail/envelopes/s3-log-file-awsdocs-example.json').toString(),
]
const firehoseSeed = fixture('cloudtrail/envelopes/firehose-http-request-cwl-cloudtrail.json').toString()

/** Mutations that keep a body close to real input: cut, flip a character, drop or retype a key. */
const mutated = fc
  .tuple(
    fc.constantFrom(...seeds, firehoseSeed),
    fc.nat(),
    fc.nat(),
    fc.string({ maxLength: 4 }),
    fc.integer({ min: 0, max: 4 }),
  )
  .map(([seed, a, b, text, how]) => {
    const i = a % seed.length
    if (how === 0) return seed.slice(0, i)
    if (how === 1) return seed.slice(0, i) + text + seed.slice(i + 1)
    const value = JSON.parse(seed)
    const keys = Object.keys(value)
    const key = keys[b % keys.length] as string
    if (how === 2) delete value[key]
    else if (how === 3) value[key] = [null, 7, 'x', {}, [], true][b % 6]
    else value[key] = { nested: value[key], [text]: seed.length }
    return JSON.stringify(value)
  })

const body = fc.oneof(
  mutated,
  fc.string(),
  fc.json(),
  fc.array(mutated, { maxLength: 5 }).map((bodies) => bodies.join('\n')),
  fc.array(fc.constantFrom(...seeds), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
)

describe('fuzzing the receivers', () => {
  it('never crashes, never answers 5xx, and publishes only valid normalized events', async () => {
    const h = await startHarness()
    const urls = ['/v1/falco', '/v1/cloudtrail', '/v1/cloudtrail/firehose']
    await fc.assert(
      // A quarter of the requests come without a token, as the watched agent would send them.
      fc.asyncProperty(
        fc.constantFrom(...urls),
        body,
        fc.boolean(),
        fc.integer({ min: 0, max: 3 }),
        async (url, payload, gzip, tokenless) => {
          const authenticated = tokenless !== 0
          const res = await h.server.inject({
            method: 'POST',
            url,
            payload: gzip ? gzipSync(payload) : payload,
            headers: {
              ...(authenticated ? { ...auth, 'x-amz-firehose-access-key': token } : {}),
              ...(gzip ? { 'content-encoding': 'gzip' } : {}),
            },
          })
          expect(res.statusCode, res.body).toBeLessThan(500)
          if (authenticated) expect([200, 202, 400, 413]).toContain(res.statusCode)
          else expect(res.statusCode).toBe(401)
          expect(() => res.json()).not.toThrow()
        },
      ),
      { numRuns: 400 },
    )
    for (const { key, value } of h.bus.records(eventsTopic)) {
      expect(validateNormalizedEvent(value), JSON.stringify(validateNormalizedEvent.errors)).toBe(true)
      expect(key).toBe(value.agent.id)
    }
  })
})
