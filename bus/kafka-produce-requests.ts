// One publish → the produce requests that carry it, none over the broker's limit. kafkajs sends one request
// per broker holding one record batch per partition, and a batch over the topic's max.message.bytes is
// refused with MESSAGE_TOO_LARGE, which is not retriable: a 5 MiB NDJSON request would otherwise be lost
// whole. Records are grouped by the partition the producer will pick (the same murmur2 as the producer's
// partitioner), each partition's records cut into chunks under the limit, and request i carries chunk i of
// every partition; the requests go one after another, so each partition keeps its order. A record alone
// over the limit can never be written and comes back apart, to be dead-lettered with the reason. Pure.

export type ProduceMessage = { key: string; value: string }

export type ProducePlan = {
  requests: ProduceMessage[][]
  /** Input positions of the records too large for any batch, with their size. */
  oversized: { index: number; bytes: number }[]
}

/**
 * Bytes a record costs in a v2 record batch, bounded from above: length, attributes, timestamp and offset
 * deltas, key and value lengths (varints, at most 5 bytes each, rounded up) and the empty header count.
 */
export const recordOverheadBytes = 32
/** The record batch header (61 bytes in v2) with room for the producer's own framing. */
export const batchOverheadBytes = 128

export function recordBytes(message: ProduceMessage): number {
  return Buffer.byteLength(message.key) + Buffer.byteLength(message.value) + recordOverheadBytes
}

export function planProduceRequests(
  messages: readonly ProduceMessage[],
  partitionOf: (key: string) => number,
  maxBatchBytes: number,
): ProducePlan {
  const budget = maxBatchBytes - batchOverheadBytes
  const chunksByPartition = new Map<number, { messages: ProduceMessage[]; bytes: number }[]>()
  const oversized: ProducePlan['oversized'] = []
  messages.forEach((message, index) => {
    const bytes = recordBytes(message)
    if (bytes > budget) {
      oversized.push({ index, bytes })
      return
    }
    const partition = partitionOf(message.key)
    const chunks = chunksByPartition.get(partition) ?? []
    chunksByPartition.set(partition, chunks)
    const last = chunks[chunks.length - 1]
    if (last && last.bytes + bytes <= budget) {
      last.messages.push(message)
      last.bytes += bytes
    } else {
      chunks.push({ messages: [message], bytes })
    }
  })
  const rounds = Math.max(0, ...[...chunksByPartition.values()].map((c) => c.length))
  const requests: ProduceMessage[][] = []
  for (let i = 0; i < rounds; i++) {
    requests.push([...chunksByPartition.values()].flatMap((chunks) => chunks[i]?.messages ?? []))
  }
  return { requests, oversized }
}
