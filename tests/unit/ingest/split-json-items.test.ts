import { describe, expect, it } from 'vitest'
import { parseJson, splitJsonItems } from '../../../ingest/split-json-items.ts'

const limits = { maxItems: 100, maxDepth: 8 }

describe('splitJsonItems', () => {
  it('keeps 19-digit integers (Falco evt.time) exact, as strings, and leaves safe numbers alone', () => {
    const value = parseJson(
      '{"evt.time":1715108059341081180,"n":-9007199254740993,"pid":42,"s":"1715108059341081180x","f":1.5e300}',
    )
    expect(value).toEqual({
      'evt.time': '1715108059341081180',
      n: '-9007199254740993',
      pid: 42,
      s: '1715108059341081180x',
      f: 1.5e300,
    })
    expect(parseJson('{"a":"\\"12345678901234567890"}')).toEqual({ a: '"12345678901234567890' })
  })

  it('splits one value, an array (with each element as written) and NDJSON (with CRLF and blank lines)', () => {
    expect(splitJsonItems(' {"a":1}\n', limits).map((i) => [i.index, i.value])).toEqual([[0, { a: 1 }]])
    const array = splitJsonItems('[ {"a":[1,2]} , "x,]" ,3 ]', limits)
    expect(array.map((i) => [i.value, i.original()])).toEqual([
      [{ a: [1, 2] }, '{"a":[1,2]}'],
      ['x,]', '"x,]"'],
      [3, '3'],
    ])
    const ndjson = splitJsonItems('{"a":1}\r\n\n{"b":2}\r\nnope\n', limits)
    expect(ndjson.map((i) => [i.index, i.value ?? i.error?.slice(0, 14), i.original()])).toEqual([
      [0, { a: 1 }, '{"a":1}'],
      [1, { b: 2 }, '{"b":2}'],
      [2, 'not valid JSON', 'nope'],
    ])
  })

  it('reports a broken multi-line document once instead of line by line', () => {
    const items = splitJsonItems('{\n  "a": 1,\n  "b": \n}', limits)
    expect(items).toHaveLength(1)
    expect(items[0]?.error).toContain('not valid JSON')
  })

  it('rejects items nested deeper than the limit, and bodies with too many items', () => {
    const [deep] = splitJsonItems(`${'{"a":'.repeat(9)}1${'}'.repeat(9)}`, limits)
    expect(deep?.error).toBe('nested deeper than 8 levels')
    expect(() => splitJsonItems(JSON.stringify(Array(101).fill(1)), limits)).toThrow(/at most 100/)
    expect(() => splitJsonItems('{}\n'.repeat(101), limits)).toThrow(/at most 100/)
    expect(() => splitJsonItems(' \n ', limits)).toThrow(/empty/)
  })
})
