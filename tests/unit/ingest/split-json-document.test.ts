import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { splitJsonDocumentInParts } from '../../../ingest/split-json-document.ts'
import { type JsonItem, splitJsonItems, splitJsonItemsInParts } from '../../../ingest/split-json-items.ts'

const limits = { maxItems: 6, maxDepth: 4 }

/** What a split gives, comparable: each item's index, value or error, and original text; or its error. */
function outcome(split: () => JsonItem[]) {
  try {
    return split().map((i) => ({ index: i.index, value: i.value, error: i.error, original: i.original() }))
  } catch (err) {
    return { thrown: (err as Error).message }
  }
}

const inParts = (text: string, partChars: number) => () =>
  [...splitJsonItemsInParts(text, limits, partChars)].flat()

describe('splitJsonDocumentInParts', () => {
  it('splits an array and a log file as splitJsonItems does, giving the loop back along the way', () => {
    const array = ' [ {"a":1} ,\n"x", [1,[2]] , 12345678901234567890, {"b":{"c":[]}} ] \n'
    const file = '{"Records":[{"eventName":"A"},{"eventName":"B"}], "n":1, "Records2": [] ,"o":{"p":[1]}}'
    for (const text of [array, file, '[]', '{}', '[ ]', '{ }', '{"a":[]}']) {
      expect(outcome(inParts(text, 4))).toEqual(outcome(() => splitJsonItems(text, limits)))
    }
    const parts = [...splitJsonDocumentInParts(array, limits, 4)]
    expect(parts.filter((p) => p.length === 0).length).toBeGreaterThan(3)
  })

  it('keeps JSON.parse semantics: duplicate keys last-wins, __proto__ an own key, depth and item limits', () => {
    const text = '{"Records":[1],"a":1,"__proto__":{"x":1},"a":2,"Records":[{"b":[1]}]}'
    const [item] = outcome(inParts(text, 4)) as { value: Record<string, unknown> }[]
    expect(Object.keys(item?.value ?? {})).toEqual(['Records', 'a', '__proto__'])
    expect(Object.getPrototypeOf(item?.value)).toBe(Object.prototype)
    expect(outcome(inParts(text, 4))).toEqual(outcome(() => splitJsonItems(text, limits)))
    const deep = '[[[[[1]]]], [[[1]]], {"Records":[[[[1]]]]}]'
    expect(outcome(inParts(deep, 4))).toEqual(outcome(() => splitJsonItems(deep, limits)))
    expect(outcome(inParts('{"Records":[[[[[1]]]]]}', 4))).toEqual([
      expect.objectContaining({ error: 'nested deeper than 4 levels' }),
    ])
    expect(outcome(inParts('[1,2,3,4,5,6,7]', 4))).toEqual({
      thrown: 'The body holds 7 items; at most 6 are accepted per request.',
    })
  })

  it('leaves a broken document to splitJsonItems, without giving any item first', () => {
    for (const text of [
      '[1,]',
      '[,1]',
      '[1 2]',
      '[{"a":1]}',
      '[1]]',
      '[1] x',
      '{"Records":[1,]}',
      '{"Records":[1}}',
      '{"Records":[1] x}',
      '{"a":1,}',
      '{"a" 1}',
      '{a:1}',
      '{"a":"1}',
      '["a\\"]',
    ]) {
      expect([...splitJsonDocumentInParts(text, limits, 4)].flat()).toEqual([])
      expect(outcome(inParts(text, 4))).toEqual(outcome(() => splitJsonItems(text, limits)))
    }
  })

  it('gives what splitJsonItems gives for any document, whole or with a character cut or added', () => {
    const doc = fc.oneof(
      fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 8 }),
      fc.dictionary(fc.constantFrom('Records', 'a', '__proto__', 'b'), fc.jsonValue({ maxDepth: 3 })),
      fc.record({ Records: fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 8 }) }),
    )
    const text = fc
      .tuple(
        doc,
        fc.boolean(),
        fc.nat(),
        fc.constantFrom('', ',', ']', '}', '[', '{', '"', ' ', '\\', ':', '1'),
      )
      .map(([value, pretty, at, extra]) => {
        const whole = JSON.stringify(value, null, pretty ? 1 : undefined)
        if (extra === '' && at % 3 === 0) return whole
        const i = at % (whole.length + 1)
        return extra === ''
          ? whole.slice(0, i) + whole.slice(i + 1)
          : whole.slice(0, i) + extra + whole.slice(i)
      })
    fc.assert(
      fc.property(text, fc.integer({ min: 1, max: 16 }), (t, partChars) => {
        expect(outcome(inParts(t, partChars))).toEqual(outcome(() => splitJsonItems(t, limits)))
      }),
      { numRuns: 3000 },
    )
  })
})
