import { describe, expect, it } from 'vitest'
import { createSharedValues } from '../../../correlate/shared-values.ts'

describe('createSharedValues', () => {
  it('gives one list per distinct sequence, whatever characters the values hold', () => {
    const shared = createSharedValues()
    const tags = ['container', 'shell', 'mitre_execution']
    const list = shared.list(tags)
    expect(list).toEqual(tags)
    expect(list).not.toBe(tags)
    expect(shared.list([...tags])).toBe(list)
    expect(shared.list(['a\u0000b'])).toEqual(['a\u0000b'])
    expect(shared.list(['a', 'b'])).toEqual(['a', 'b'])
    expect(shared.list(['a,b'])).not.toBe(shared.list(['a', 'b']))
  })

  it('starts over past its limit, still answering with equal values', () => {
    const shared = createSharedValues(2)
    for (const value of ['us-east-1', 'eu-west-1', 'ap-south-1', 'us-east-1']) {
      expect(shared.one(value)).toBe(value)
    }
    expect(shared.list(['x'])).toEqual(['x'])
    expect(shared.list(['y'])).toEqual(['y'])
    expect(shared.list(['z'])).toEqual(['z'])
  })
})
