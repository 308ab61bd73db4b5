import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createBaselineStore } from '../../../correlate/agent-baseline.ts'
import { baselineRecordJson, numberJson } from '../../../correlate/baseline-record-json.ts'
import { storeTestBaseline } from './sample-events.ts'

describe('baselineRecordJson', () => {
  it('writes numbers as JSON.stringify does, large epoch-ms integers included', () => {
    const edges = [
      0,
      -0,
      1,
      -1,
      0.5,
      -2.25,
      1e9 - 1,
      1e9,
      1e9 + 1,
      1_000_000_000_001,
      1_796_512_204_000,
      1_800_000_000_000,
      1e16,
      1e17 - 2,
      1e17,
      2 ** 53,
      -1_796_512_204_000,
      1e21,
      1.5e12 + 0.25,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.MAX_SAFE_INTEGER,
      Number.MIN_VALUE,
    ]
    for (const n of edges) expect(numberJson(n), String(n)).toBe(JSON.stringify(n))
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 2 ** 53 }), fc.double(), fc.integer()), (n) => {
        expect(numberJson(n)).toBe(JSON.stringify(n))
      }),
      { numRuns: 2000 },
    )
  })

  it('gives the bytes of JSON.stringify for every record the baseline keeps', () => {
    const call = fc.record({
      agent: fc.constantFrom('a', 'agent-0001', 'é"\\\u2028', 'x'.repeat(40)),
      time: fc.integer({ min: 1_700_000_000_000, max: 1_700_000_000_000 + 30 * 86_400_000 }),
      action: fc.constantFrom('iam:AttachRolePolicy', 's3:GetObject', 'sts:"AssumeRole"\n'),
      resource: fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
    })
    fc.assert(
      fc.property(fc.array(call, { maxLength: 120 }), (calls) => {
        const store = createBaselineStore(storeTestBaseline)
        for (const c of calls) store.observe(c.agent, c.time, c.action, c.resource)
        for (const record of [...store.snapshot(), ...store.takeChanges().upserted])
          expect(baselineRecordJson(record)).toBe(JSON.stringify(record))
      }),
      { numRuns: 300 },
    )
  })
})
