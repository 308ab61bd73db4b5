// Which partition a key lands on, for the embedded bus: FNV-1a (32 bit) over the key's UTF-8 bytes, modulo
// the partition count. Stable across processes, versions and platforms, so a restart keeps every key on
// its partition. (The Kafka bus uses Kafka's own murmur2 partitioner instead; the two need not agree.)

const fnvOffsetBasis = 0x811c9dc5
const fnvPrime = 0x01000193

export function fnv1a32(key: string): number {
  let hash = fnvOffsetBasis
  for (const byte of Buffer.from(key, 'utf8')) {
    hash ^= byte
    hash = Math.imul(hash, fnvPrime)
  }
  return hash >>> 0
}

export function partitionForKey(key: string, partitions: number): number {
  return fnv1a32(key) % partitions
}
