import { describe, expect, it } from 'vitest'
import { problemsOf, validateFalcoAlert } from '../../../schemas/input-validators.ts'
import { ajv } from '../../../schemas/validators.ts'

const alert = {
  time: '2024-05-07T18:54:19.341081180Z',
  rule: 'Terminal shell in container',
  priority: 'Notice',
  source: 'syscall',
  hostname: 'node-1',
  output: 'A shell was spawned',
  tags: ['container', 'shell'],
  output_fields: { 'proc.name': 'bash', 'proc.pid': 4242, 'evt.time': '1715108059341081180' },
}

const problems = (value: unknown) =>
  validateFalcoAlert(value) ? [] : problemsOf(validateFalcoAlert, value).map((p) => `${p.path} ${p.message}`)

describe('falco-alert.schema.json', () => {
  it('keeps output field values of every JSON type, strings up to 4 KiB', () => {
    const fields = {
      text: 'x'.repeat(4096),
      number: 1.5,
      integer: 7,
      flag: true,
      none: null,
      list: ['a', 1, { b: [] }],
      object: { nested: 'x'.repeat(5000) },
    }
    expect(problems({ ...alert, output_fields: fields })).toEqual([])
  })

  it('caps every string the sender writes, and the number of fields and tags', () => {
    const fields = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`f${i}`, i]))
    expect(problems({ ...alert, output_fields: fields })).toEqual([
      '/output_fields must NOT have more than 256 properties',
    ])
    expect(problems({ ...alert, output_fields: { 'proc.cmdline': 'x'.repeat(4097) } })).toEqual([
      '/output_fields/proc.cmdline must NOT have more than 4096 characters',
    ])
    expect(problems({ ...alert, output_fields: { ['k'.repeat(129)]: 1 } })).toContain(
      '/output_fields must NOT have more than 128 characters',
    )
    expect(problems({ ...alert, rule: 'r'.repeat(257) })).toEqual([
      '/rule must NOT have more than 256 characters',
    ])
    expect(problems({ ...alert, rule: '' })).toEqual(['/rule must NOT have fewer than 1 characters'])
    expect(problems({ ...alert, output: 'o'.repeat(16385) })).toEqual([
      '/output must NOT have more than 16384 characters',
    ])
    expect(problems({ ...alert, hostname: 'h'.repeat(254) })).toEqual([
      '/hostname must NOT have more than 253 characters',
    ])
    expect(problems({ ...alert, tags: Array.from({ length: 65 }, () => 't') })).toEqual([
      '/tags must NOT have more than 64 items',
    ])
    expect(problems({ ...alert, tags: ['t'.repeat(129)] })).toEqual([
      '/tags/0 must NOT have more than 128 characters',
    ])
    expect(problems({ ...alert, uuid: 'u'.repeat(65) })).toEqual([
      '/uuid must NOT have more than 64 characters',
    ])
  })

  it('counts characters, not UTF-16 units: 4,096 emoji are within the cap', () => {
    expect(problems({ ...alert, output_fields: { text: '😀'.repeat(4096) } })).toEqual([])
    expect(problems({ ...alert, output_fields: { text: '😀'.repeat(4097) } })).toEqual([
      '/output_fields/text must NOT have more than 4096 characters',
    ])
  })

  it('counts characters for minLength too, reading a string only when it is shorter than twice the limit', () => {
    const atLeast = (limit: number) => {
      const validate = ajv.compile({ type: 'string', minLength: limit })
      return (text: string) => validate(text)
    }
    const one = atLeast(1)
    expect(['', 'a', '😀', '\ud83d'].map(one)).toEqual([false, true, true, true])
    const two = atLeast(2)
    // One emoji is two UTF-16 units but one character; a lone surrogate counts as one.
    expect(['a', 'ab', '😀', '😀😀', '😀a', '\ud83d\ud83d', 'abcd'].map(two)).toEqual([
      false,
      true,
      false,
      true,
      true,
      true,
      true,
    ])
    const three = atLeast(3)
    expect(['😀a', '😀😀', '😀😀😀', 'abc', '😀ab'].map(three)).toEqual([false, false, true, true, true])
    expect(problems({ ...alert, rule: '' })).toEqual(['/rule must NOT have fewer than 1 characters'])
  })
})
