// Firehose retries a delivery with the same request id until it gets a 200: remember the ids already
// published (for as long as Firehose may retry) so a redelivery is answered 200 without publishing twice.
// A redelivery that arrives while the first attempt is still publishing waits for that attempt.
export type SeenRequestIds = {
  /** Runs `work` once per id; 'duplicate' when the id was already published (work not run). */
  once(id: string, work: () => Promise<void>): Promise<'done' | 'duplicate'>
  size(): number
}

type Entry = { doneAt?: number; running?: Promise<void> }

export function createSeenRequestIds(
  config: { ttlMs: number; max: number },
  now: () => number,
): SeenRequestIds {
  const entries = new Map<string, Entry>()

  const prune = () => {
    const cutoff = now() - config.ttlMs
    for (const [id, entry] of entries) {
      if (entries.size <= config.max && (entry.doneAt === undefined || entry.doneAt >= cutoff)) break
      if (entry.running) continue
      entries.delete(id)
    }
  }

  return {
    once: async (id, work) => {
      prune()
      const entry = entries.get(id)
      if (entry?.doneAt !== undefined) return 'duplicate'
      if (entry?.running) {
        await entry.running
        return 'duplicate'
      }
      const running = work()
      entries.set(id, { running })
      try {
        await running
      } catch (err) {
        entries.delete(id)
        throw err
      }
      entries.delete(id)
      entries.set(id, { doneAt: now() })
      return 'done'
    },
    size: () => entries.size,
  }
}
