// Which partition a key lands on, for the embedded bus: FNV-1a (32 bit) over the key's UTF-8 bytes, modulo
// the partition count. Stable across processes, versions and platforms, so a restart keeps every key on
// its partition. (The Kafka bus uses Kafka's own murmur2 partitioner instead; the two need not agree.)

const fnvOffsetBasis = 0x811c9dc5
const fnvPrime = 0x01000193

export function fnv1a32(key: string): number {
  let hash = fnvOffsetBasis
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i)
    // ASCII is its own UTF-8 (agent ids nearly always are): no encoding on the hot path.
    if (code >= 0x80) return fnv1a32Bytes(Buffer.from(key, 'utf8'))
    hash = Math.imul(hash ^ code, fnvPrime)
  }
  return hash >>> 0
}

function fnv1a32Bytes(bytes: Uint8Array): number {
  let hash = fnvOffsetBasis
  for (const byte of bytes) hash = Math.imul(hash ^ byte, fnvPrime)
  return hash >>> 0
}

export function partitionForKey(key: string, partitions: number): number {
  return fnv1a32(key) % partitions
}
