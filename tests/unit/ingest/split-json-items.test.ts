import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { depthOf, parseJsonWithin } from '../../../ingest/json-text.ts'
import { type JsonItem, parseJson, splitJsonItems } from '../../../ingest/split-json-items.ts'

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
    // A CloudTrail session name: the digit run sits inside a string, after a `-`.
    const session = '{"roleSessionName":"aws-go-sdk-1715108059341081180","t":"a:1715108059341081180"}'
    expect(parseJson(session)).toEqual(JSON.parse(session))
    // Two value-like runs in one string, then a real one, then 2^53 - 1, which stays a number.
    const runs =
      '{"s":"a:12345678901234567890, b:[98765432109876543210","n":12345678901234567890,"m":[9007199254740991]}'
    expect(parseJson(runs)).toEqual({
      s: 'a:12345678901234567890, b:[98765432109876543210',
      n: '12345678901234567890',
      m: [9007199254740991],
    })
  })

  it('finds unsafe integers after whitespace, in arrays, at the top level and after escaped backslashes', () => {
    expect(parseJson('{\n  "t" :\t 1715108059341081180 ,\n  "a": [ -12345678901234567890,7 ]\n}')).toEqual({
      t: '1715108059341081180',
      a: ['-12345678901234567890', 7],
    })
    expect(parseJson(' 12345678901234567890')).toBe('12345678901234567890')
    expect(parseJson('{"s":"\\\\","n":12345678901234567890}')).toEqual({ s: '\\', n: '12345678901234567890' })
    const numbers = '[1.12345678901234567890,12345678901234567890.5,12345678901234567890e2]'
    expect(parseJson(numbers)).toEqual(JSON.parse(numbers))
    expect(() => parseJson('{"s":"12345678901234567890')).toThrow(/Unterminated string/)
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

  it('keeps the good lines after a broken first NDJSON line, rejecting only that line', () => {
    // The sender controls its first line: `{"output":"…` cut short must not drop the alerts after it.
    const items = splitJsonItems('{"output":"12:00:00 Warning cut sho\n{"a":1}\n{"b":2}\n', limits)
    expect(items.map((i) => [i.index, i.value ?? i.error?.slice(0, 14)])).toEqual([
      [0, 'not valid JSON'],
      [1, { a: 1 }],
      [2, { b: 2 }],
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
    const [arrayDeep] = splitJsonItems(`[${'['.repeat(9)}${']'.repeat(9)}]`, limits)
    expect(arrayDeep?.error).toBe('nested deeper than 8 levels')
    // Many brackets, but in strings or side by side: shallow, accepted.
    const [wide] = splitJsonItems(`{"s":"${'{['.repeat(9)}","a":[${'{},'.repeat(9)}{}]}`, limits)
    expect(wide?.value).toMatchObject({ s: '{['.repeat(9) })
    expect(() => splitJsonItems(JSON.stringify(Array(101).fill(1)), limits)).toThrow(/at most 100/)
    expect(() => splitJsonItems('{}\n'.repeat(101), limits)).toThrow(/at most 100/)
    expect(() => splitJsonItems(' \n ', limits)).toThrow(/empty/)
  })

  it('keeps the unsafe integers of a log file it walks for depth, and none inside its strings', () => {
    // More brackets (10) than maxDepth: parsed first and walked (parseJsonWithin), quoted only when needed.
    const record = (n: string) =>
      `{"eventTime":"2025-01-01T00:00:00Z","n":${n},"s":"a:12345678901234567890","o":{}}`
    const file = (n: string) =>
      `{"Records":[${[record(n), record('7'), record('1e300'), record('0')].join(',')}]}`
    const limits = { maxItems: 100, maxDepth: 8, parseFirst: true }
    const [big] = splitJsonItems(file('12345678901234567890'), limits)
    expect(big?.value).toEqual(parseJson(file('12345678901234567890')))
    // The same item as without parseFirst (ingest's receivers), which scans before it parses.
    const shown = (items: JsonItem[]) => items.map((i) => ({ ...i, original: i.original() }))
    expect(shown(splitJsonItems(file('12345678901234567890'), { ...limits, parseFirst: false }))).toEqual(
      shown([big as JsonItem]),
    )
    expect((big as { value: { Records: { n: unknown }[] } }).value.Records.map((r) => r.n)).toEqual([
      '12345678901234567890',
      7,
      1e300,
      0,
    ])
    const [safe] = splitJsonItems(file('9007199254740991'), limits)
    expect((safe as { value: { Records: object[] } }).value.Records[0]).toMatchObject({
      n: 9007199254740991,
      s: 'a:12345678901234567890',
    })
    // Deeper than the limit, and broken: as before.
    const [deep] = splitJsonItems(
      `{"Records":[${'['.repeat(8)}12345678901234567890${']'.repeat(8)}]}`,
      limits,
    )
    expect(deep?.error).toBe('nested deeper than 8 levels')
    const broken = `${file('12345678901234567890').slice(0, -2)}`
    expect(splitJsonItems(broken, limits)[0]?.error).toBe(
      `not valid JSON: ${errorOf(() => parseJson(broken))}`,
    )
  })
})

const errorOf = (parse: () => unknown) => {
  try {
    parse()
  } catch (err) {
    return (err as Error).message
  }
}

describe('parseJson exactness (property)', () => {
  // Values where unsafe integers are tagged; written as bare digits, they must come back as those digits.
  type Tagged = { big: string } | string | number | boolean | null | Tagged[] | { [k: string]: Tagged }
  const bigInteger = fc
    .tuple(
      fc.boolean(),
      fc.integer({ min: 1, max: 9 }),
      fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 16, maxLength: 20 }),
    )
    .map(([neg, first, rest]) => ({ big: `${neg ? '-' : ''}${first}${rest.join('')}` }))
  const trickyString = fc.stringMatching(/^[0-9:,[\]"\\ a-z{}]{0,30}$/)
  const tagged: fc.Arbitrary<Tagged> = fc.letrec<{ value: Tagged }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      bigInteger,
      trickyString,
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constant(null),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(trickyString, tie('value'), { maxKeys: 4 }),
    ),
  })).value
  const isBig = (v: unknown): v is { big: string } =>
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.keys(v).length === 1 &&
    'big' in v &&
    typeof v.big === 'string' &&
    /^-?\d{17,}$/.test(v.big)
  const write = (v: Tagged): string => {
    if (isBig(v)) return v.big
    if (Array.isArray(v)) return `[${v.map(write).join(' , ')}]`
    if (typeof v === 'object' && v !== null)
      return `{${Object.entries(v)
        .map(([k, x]) => `${JSON.stringify(k)}:${write(x)}`)
        .join(',')}}`
    return JSON.stringify(v)
  }
  const expected = (v: Tagged): unknown => {
    if (isBig(v)) return Number.isSafeInteger(Number(v.big)) ? Number(v.big) : v.big
    if (Array.isArray(v)) return v.map(expected)
    if (typeof v === 'object' && v !== null)
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expected(x)]))
    const text = JSON.stringify(v)
    // A double written as a long digit run is an unsafe integer literal like any other: kept as text.
    return /^-?\d{16,}$/.test(text) && !Number.isSafeInteger(v) ? text : JSON.parse(text)
  }

  it('keeps every unsafe integer exact and changes nothing else', () => {
    fc.assert(
      fc.property(tagged, (v) => {
        expect(parseJson(write(v))).toEqual(expected(v))
      }),
      { numRuns: 1000 },
    )
  })

  it("gives parseJson's value when parsed and walked at once (parseJsonWithin)", () => {
    fc.assert(
      fc.property(tagged, (v) => {
        expect(parseJsonWithin(write(v), 100)).toEqual({ value: expected(v) })
      }),
      { numRuns: 1000 },
    )
  })
})

describe('parseJson on any text (property)', () => {
  // The rule read character by character, as the oracle for the scan that steps over strings with indexOf:
  // quote a run of 16+ digits outside strings where a value starts, unless a fraction or exponent follows
  // or it is safe.
  const reference = (text: string): string => {
    let out = ''
    let copied = 0
    let inString = false
    for (let i = 0; i < text.length; i++) {
      const c = text[i] as string
      if (inString) {
        if (c === '\\') i++
        else if (c === '"') inString = false
        continue
      }
      if (c === '"') {
        inString = true
        continue
      }
      if (!/[-\d]/.test(c) || /\d/.test(text[i - 1] ?? '')) continue
      const run = /^-?(\d+)/.exec(text.slice(i))
      const digits = run?.[0] ?? ''
      const end = i + digits.length
      const before = text.slice(0, i).trimEnd()
      const starts = before === '' || /[:,[]$/.test(before)
      if (run && (run[1] as string).length >= 16 && starts && !/[.eE]/.test(text[end] ?? '')) {
        if (!Number.isSafeInteger(Number(digits))) {
          out += `${text.slice(copied, i)}"${digits}"`
          copied = end
        }
      }
      i = Math.max(i, end - 1)
    }
    return out + text.slice(copied)
  }
  const outcome = (parse: () => unknown) => {
    try {
      return { value: parse() }
    } catch (err) {
      return { error: (err as Error).message }
    }
  }
  const token = fc.constantFrom(
    '"',
    '\\',
    '\\"',
    ':',
    ',',
    '[',
    ']',
    '{',
    '}',
    ' ',
    '\n',
    '-',
    '1234567890123456789',
    '9007199254740993',
    '9007199254740991',
    // Runs that reach 16 digits only with their neighbours: the scan follows a digit back at most 15.
    '123456789012345',
    '0',
    '12',
    '.5',
    'e3',
    'a',
  )

  it('quotes exactly the integers the rule names, in valid and broken JSON alike', () => {
    fc.assert(
      fc.property(fc.array(token, { maxLength: 24 }), (tokens) => {
        const text = tokens.join('')
        expect(outcome(() => parseJson(text))).toEqual(outcome(() => JSON.parse(reference(text))))
      }),
      { numRuns: 5000 },
    )
  })

  it('parses as parseJson and counts as depthOf when both are done at once (parseJsonWithin)', () => {
    const digits = fc.stringMatching(/^[0-9]{1,40}$/)
    const walked = (text: string, limit: number) => {
      const value = parseJson(text)
      return depthOf(value, limit) > limit ? undefined : { value }
    }
    fc.assert(
      fc.property(fc.array(fc.oneof(token, digits), { maxLength: 60 }), fc.nat(4), (pieces, limit) => {
        const text = pieces.join('')
        expect(outcome(() => parseJsonWithin(text, limit))).toEqual(outcome(() => walked(text, limit)))
      }),
      { numRuns: 5000 },
    )
  })

  it('finds digit runs of every length wherever they sit in long texts', () => {
    const digits = fc.stringMatching(/^[0-9]{1,40}$/)
    fc.assert(
      fc.property(fc.array(fc.oneof(token, digits), { maxLength: 160 }), (pieces) => {
        const text = pieces.join('')
        expect(outcome(() => parseJson(text))).toEqual(outcome(() => JSON.parse(reference(text))))
      }),
      { numRuns: 3000 },
    )
  })
})
