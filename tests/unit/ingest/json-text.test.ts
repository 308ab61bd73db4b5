import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { depthOf } from '../../../ingest/json-text.ts'

// The definition, walked recursively: the oracle for depthOf's iterative walk (arrays by index).
const depth = (value: unknown): number => {
  if (typeof value !== 'object' || value === null) return 0
  let deepest = 0
  for (const child of Object.values(value)) deepest = Math.max(deepest, depth(child))
  return 1 + deepest
}

describe('depthOf', () => {
  it('gives the depth up to the limit, and a depth past it once deeper (property, on parsed JSON)', () => {
    const nested = fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', maxDepth: 12 },
        fc.jsonValue({ maxDepth: 2 }),
        fc.array(tie('value'), { maxLength: 5 }),
        fc.dictionary(fc.constantFrom('a', '0', '1', '__proto__', 'length', 'Records'), tie('value'), {
          maxKeys: 4,
        }),
      ),
    })).value
    fc.assert(
      fc.property(nested, fc.integer({ min: 0, max: 14 }), (value, limit) => {
        // Through JSON text, as every caller's value comes: own `__proto__` keys, no holes.
        const parsed: unknown = JSON.parse(JSON.stringify(value) ?? 'null')
        const exact = depth(parsed)
        expect(depthOf(parsed, limit)).toBe(exact > limit ? limit + 1 : exact)
      }),
      { numRuns: 3000 },
    )
  })

  it('counts nesting, not brackets inside strings, and walks a hostile depth without the stack', () => {
    const text = (levels: number, open: string, close: string) =>
      `${open.repeat(levels)}"]]]}}}"${close.repeat(levels)}`
    expect(depthOf(JSON.parse(text(6, '[', ']')), 64)).toBe(6)
    expect(depthOf(JSON.parse(text(6, '{"a":', '}')), 64)).toBe(6)
    expect(depthOf(JSON.parse(`{"Records":[${'{"b":[1,{"c":{}}]},'.repeat(500)}[[[[]]]]]}`), 64)).toBe(6)
    // 200,000 levels, past any recursion: a limit that never stops the walk still ends.
    const deep: unknown = JSON.parse(text(200_000, '[', ']'))
    expect(depthOf(deep, Number.POSITIVE_INFINITY)).toBe(200_000)
    expect(depthOf(deep, 64)).toBe(65)
    expect(depthOf(JSON.parse(`{"__proto__":${text(70, '{"a":', '}')}}`), 64)).toBe(65)
  })
})
