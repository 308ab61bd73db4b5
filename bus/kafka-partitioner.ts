// Kafka's default partitioner for keyed records: toPositive(murmur2(utf8(key))) % partitions, exactly as
// the Java client (Utils.murmur2, BuiltInPartitioner.partitionForKey) and kafkajs's DefaultPartitioner do.
// Co-partitioning (correlation.md P1) depends on every producer agreeing on this function.

const seed = 0x9747b28c
const m = 0x5bd1e995
const r = 24

/** Kafka's murmur2 over bytes, as the signed 32-bit int Java returns. */
export function murmur2(data: Uint8Array): number {
  const length = data.length
  let h = (seed ^ length) | 0
  const whole = length & ~3
  for (let i = 0; i < whole; i += 4) {
    let k =
      (data[i] ?? 0) | ((data[i + 1] ?? 0) << 8) | ((data[i + 2] ?? 0) << 16) | ((data[i + 3] ?? 0) << 24)
    k = Math.imul(k, m)
    k ^= k >>> r
    k = Math.imul(k, m)
    h = Math.imul(h, m) ^ k
  }
  const rest = length & 3
  if (rest === 3) h ^= (data[whole + 2] ?? 0) << 16
  if (rest >= 2) h ^= (data[whole + 1] ?? 0) << 8
  if (rest >= 1) h = Math.imul(h ^ (data[whole] ?? 0), m)
  h ^= h >>> 13
  h = Math.imul(h, m)
  h ^= h >>> 15
  return h | 0
}

/** Java's Utils.toPositive: clears the sign bit (not Math.abs). */
export const toPositive = (n: number): number => n & 0x7fffffff

/** The partition Kafka's default partitioner picks for a keyed record. */
export function partitionForKey(key: string | Uint8Array, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1)
    throw new RangeError(`partitions must be ≥ 1: ${partitions}`)
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key
  return toPositive(murmur2(bytes)) % partitions
}
