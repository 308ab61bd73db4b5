import { describe, expect, it } from 'vitest'
import { createSharedValues } from '../../../correlate/shared-values.ts'

/** A fresh copy, as JSON.parse of each bus record makes one. */
const copy = (value: string) => JSON.parse(JSON.stringify(value)) as string
const tags = ['maturity_stable', 'container', 'shell', 'mitre_execution', 'T1059']

describe('createSharedValues', () => {
  it('gives one list per distinct sequence, whatever characters the values hold', () => {
    const shared = createSharedValues()
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
    expect(shared.size()).toBeLessThanOrEqual(2 + 3)
  })
})

describe('held values', () => {
  it('drops a value when its last holder gives it back, and counts its bytes meanwhile', () => {
    const shared = createSharedValues()
    expect(shared.bytes()).toBe(0)
    const a = shared.hold(copy('Terminal shell in container'))
    const b = shared.hold(copy('Terminal shell in container'))
    expect(b).toBe(a)
    const held = shared.bytes()
    expect(held).toBeGreaterThan(2 * 'Terminal shell in container'.length)
    shared.release(a)
    // Still held by the second holder: the same copy, the same bytes.
    expect(shared.hold(copy('Terminal shell in container'))).toBe(a)
    shared.release(a)
    expect(shared.bytes()).toBe(held)
    shared.release(a)
    expect(shared.size()).toBe(0)
    expect(shared.bytes()).toBe(0)
    // Given back once too often: nothing else is taken with it.
    const c = shared.hold(copy('sagov-west-2r'))
    shared.release('Terminal shell in container')
    shared.release(c)
    shared.release(c)
    expect(shared.bytes()).toBe(0)
  })

  it('never drops a kept value (an identity) when a holder releases it', () => {
    const shared = createSharedValues()
    const kept = shared.one(copy('609418236337'))
    const held = shared.hold(copy('609418236337'))
    expect(held).toBe(kept)
    shared.release(held)
    expect(shared.hold(copy('609418236337'))).toBe(kept)
    expect(shared.size()).toBe(1)
  })

  it('keeps the values of a held list until the list goes, and a value the list shares with others', () => {
    const shared = createSharedValues()
    const rule = shared.hold(copy('shell'))
    const list = shared.holdList(tags.map(copy))
    expect(shared.holdList(tags.map(copy))).toBe(list)
    expect(list[2]).toBe(rule)
    shared.releaseList(tags)
    expect(shared.holdList(tags.map(copy))).toBe(list)
    shared.releaseList(tags)
    shared.releaseList(tags)
    // The list and the values only it held are gone; 'shell' is still held on its own.
    expect(shared.size()).toBe(1)
    expect(shared.hold(copy('shell'))).toBe(rule)
    shared.release(rule)
    shared.release(rule)
    expect(shared.size()).toBe(0)
    expect(shared.bytes()).toBe(0)
  })

  it('past its limit of kept values, still keeps what holders hold', () => {
    const shared = createSharedValues(2)
    const held = shared.hold(copy('Write below etc'))
    const list = shared.holdList(['container', 'filesystem'])
    for (const value of ['us-east-1', 'eu-west-1', 'ap-south-1', 'Write below etc', 'container'])
      shared.one(value)
    shared.list(['x'])
    shared.list(['y'])
    expect(shared.hold(copy('Write below etc'))).toBe(held)
    expect(shared.holdList(['container', 'filesystem'])).toBe(list)
  })

  it('a flood of distinct values, all given back, leaves the cache empty', () => {
    const shared = createSharedValues()
    const taken: string[][] = []
    for (let i = 0; i < 5_000; i++) {
      const rule = shared.hold(`Drift ${i} `.padEnd(256, 'x'))
      taken.push([rule, ...shared.holdList(Array.from({ length: 8 }, (_, k) => `tag-${i}-${k}`))])
    }
    expect(shared.bytes()).toBeGreaterThan(5_000 * 512)
    for (const [rule, ...list] of taken) {
      shared.release(rule as string)
      shared.releaseList(list)
    }
    expect(shared.size()).toBe(0)
    expect(shared.bytes()).toBe(0)
  })
})
