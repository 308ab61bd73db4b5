// What the memory budget counts: estimated heap bytes of a buffered entry and of the values entries share.
/**
 * Estimated heap bytes of one entry (slot arrays, heap, seen table, agent share, packed id, arena record),
 * calibrated against the heap deltas of bench/correlator.bench.ts; an id or output kept as a string (with
 * its map entry) costs its length and about 64 bytes more.
 */
export const entryBytes = (idText: string | undefined, arenaOutput: number, outputText: string | undefined) =>
  171 +
  (idText === undefined ? 0 : 64 + idText.length) +
  arenaOutput +
  (outputText === undefined ? 0 : 64 + outputText.length)

/** Estimated heap bytes of a shared value's strings: 2 bytes a character (worst case) and 32 per string. */
const stringBytes = (v: unknown): number => (typeof v === 'string' ? 32 + 2 * v.length : 0)

/**
 * What a detail or an identity holds beyond the entry (rule, tags, hostname, action, principal, ARNs…).
 * Shared by the entries that say the same thing, it is counted once while any of them is buffered: an
 * agent that makes every event different pays for every byte.
 */
export const sharedBytes = (value: object): number => {
  let total = 64
  for (const key in value) {
    const v = (value as Record<string, unknown>)[key]
    // A core detail holds every member, undefined when its call had none (event-details.ts): not counted.
    if (v === undefined) continue
    if (Array.isArray(v)) for (const item of v) total += 8 + stringBytes(item)
    else total += 16 + stringBytes(v)
  }
  return total
}
