import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { fnv1a32, partitionForKey } from '../../../bus/partition-for-key.ts'

describe('partitionForKey', () => {
  it('is FNV-1a 32 over UTF-8 bytes (published test vectors)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5)
    expect(fnv1a32('a')).toBe(0xe40c292c)
    expect(fnv1a32('foobar')).toBe(0xbf9cf968)
    // Non-ASCII keys hash their UTF-8 bytes: 'é' is 0xc3 0xa9.
    expect(fnv1a32('é')).toBe(Math.imul(Math.imul(0x811c9dc5 ^ 0xc3, 0x01000193) ^ 0xa9, 0x01000193) >>> 0)
  })

  it('hashes the UTF-8 bytes of any string, ASCII fast path or not', () => {
    const reference = (key: string) => {
      let hash = 0x811c9dc5
      for (const byte of Buffer.from(key, 'utf8')) hash = Math.imul(hash ^ byte, 0x01000193)
      return hash >>> 0
    }
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (key) => fnv1a32(key) === reference(key)))
  })

  it('puts every key on one partition in range, the same one every time', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.integer({ min: 1, max: 256 }), (key, partitions) => {
        const p = partitionForKey(key, partitions)
        expect(p).toBeGreaterThanOrEqual(0)
        expect(p).toBeLessThan(partitions)
        expect(partitionForKey(key, partitions)).toBe(p)
      }),
    )
  })

  it('spreads agent-like keys over every partition', () => {
    const counts = new Array(8).fill(0)
    for (let i = 0; i < 800; i++) counts[partitionForKey(`agent-${i}`, 8)]++
    for (const count of counts) expect(count).toBeGreaterThan(50)
  })
})
