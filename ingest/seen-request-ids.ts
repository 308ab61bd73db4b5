// Firehose retries a delivery with the same request id until it gets a 200: remember the deliveries already
// published (for as long as Firehose may retry) so a redelivery is answered 200 without publishing twice.
// A delivery is remembered only once it was published whole: an attempt that failed leaves nothing behind,
// and a redelivery that arrived while it was running then publishes for itself. The key names the sender as
// well as the request id (firehose-receiver.ts), so no other holder of a token can claim an id first.
export type SeenRequestIds = {
  /**
   * Runs `work` unless a delivery of this key was published; 'duplicate' when it was (work not run). A call
   * that finds the key's first attempt still running waits for it: done, this is a duplicate; failed, this
   * call runs its own `work`.
   */
  once(key: string, work: () => Promise<void>): Promise<'done' | 'duplicate'>
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
    for (const [key, entry] of entries) {
      if (entries.size <= config.max && (entry.doneAt === undefined || entry.doneAt >= cutoff)) break
      if (entry.running) continue
      entries.delete(key)
    }
  }

  return {
    once: async (key, work) => {
      prune()
      let entry = entries.get(key)
      while (entry?.running) {
        // The first attempt's failure is its own to answer; this one then runs its work.
        await entry.running.catch(() => undefined)
        entry = entries.get(key)
      }
      if (entry?.doneAt !== undefined) return 'duplicate'
      const running = work()
      entries.set(key, { running })
      try {
        await running
      } catch (err) {
        entries.delete(key)
        throw err
      }
      entries.delete(key)
      entries.set(key, { doneAt: now() })
      return 'done'
    },
    size: () => entries.size,
  }
}
