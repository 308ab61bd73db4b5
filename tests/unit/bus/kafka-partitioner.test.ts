import fc from 'fast-check'
import { Partitioners } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { murmur2, partitionForKey, toPositive } from '../../../bus/kafka-partitioner.ts'

describe('murmur2', () => {
  // apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2 (Apache-2.0).
  const kafkaVectors: [string, number][] = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ]

  it.each(kafkaVectors)('hashes %j as Kafka’s Utils.murmur2 does', (key, expected) => {
    expect(murmur2(Buffer.from(key))).toBe(expected)
  })

  it('covers tails of 0, 2 and 3 bytes with Kafka’s vectors; 1 byte is checked against kafkajs below', () => {
    expect(new Set(kafkaVectors.map(([key]) => key.length % 4))).toEqual(new Set([0, 2, 3]))
  })

  it('hashes the UTF-8 bytes of non-ASCII keys', () => {
    expect(partitionForKey('agent-é', 12)).toBe(toPositive(murmur2(Buffer.from('agent-é', 'utf8'))) % 12)
  })
})

describe('partitionForKey', () => {
  it('clears the sign bit rather than taking the absolute value (Java toPositive)', () => {
    expect(toPositive(-973932308)).toBe(-973932308 & 0x7fffffff)
    expect(toPositive(-2147483648)).toBe(0)
    expect(partitionForKey('21', 1000)).toBe((-973932308 & 0x7fffffff) % 1000)
  })

  it('picks the same partition as kafkajs’s DefaultPartitioner for any key and partition count', () => {
    const kafkajs = Partitioners.DefaultPartitioner()
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 64 }),
        fc.integer({ min: 1, max: 256 }),
        (key, n) => {
          const partitionMetadata = Array.from({ length: n }, (_, partitionId) => ({
            partitionId,
            leader: 1,
            replicas: [1],
            isr: [1],
            partitionErrorCode: 0,
          }))
          const expected = kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } })
          expect(partitionForKey(key, n)).toBe(expected)
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('rejects a partition count below one', () => {
    expect(() => partitionForKey('a', 0)).toThrow(RangeError)
  })
})
