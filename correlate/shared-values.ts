// One copy of each repeated string. Every event from the bus brings its own copies (JSON.parse makes
// fresh strings), so what the correlator keeps for long (details, identities) takes the shared copy
// instead: thousands of hosts and agents then hold a few rule names, tags, namespaces and accounts, not
// thousands. Consulted only when such a thing is created, never per event.
//
// Two ways to take a value. `hold`/`holdList` count the holder: `release`/`releaseList` give the hold
// back, and a value (or list) no one holds any more is dropped at once, so what the watched agent made
// different in every event leaves with its events (event-details.ts holds for each interned detail and
// releases when its last buffered entry goes). `one`/`list` keep the value for holders that never release
// (identities): a kept value is never dropped by a release, and the kept values are bounded by `limit`,
// past which those no one holds are dropped (what was kept stays valid, only no longer shared).

export type SharedValues = {
  /** The shared copy, kept (not counted) until past `limit` kept values. */
  one(value: string): string
  /** One list per distinct sequence of values, itself made of shared values; kept like `one`. */
  list(values: readonly string[]): string[]
  /** The shared copy, held once more until the matching `release`. */
  hold(value: string): string
  /** The shared list, held once more until the matching `releaseList`. */
  holdList(values: readonly string[]): string[]
  release(value: string): void
  releaseList(values: readonly string[]): void
  /** Distinct values and lists the cache keeps. */
  size(): number
  /** Estimated heap bytes the cache keeps: its values, its lists and their lookup keys. */
  bytes(): number
}

type Held<T> = { shared: T; holds: number; kept: boolean; bytes: number }
type HeldList = Held<string[]> & { key: string }

/** The same estimate as agent-windows.ts: a string's header plus two bytes a character. */
const stringBytes = (value: string) => 32 + 2 * value.length
/** A map entry and the record behind it. */
const entryBytes = 64

export function createSharedValues(limit = 20_000): SharedValues {
  const values = new Map<string, Held<string>>()
  const lists = new Map<string, HeldList>()
  let kept = 0
  let bytes = 0

  const entry = (value: string): Held<string> => {
    let known = values.get(value)
    if (known === undefined) {
      known = { shared: value, holds: 0, kept: false, bytes: entryBytes + stringBytes(value) }
      values.set(value, known)
      bytes += known.bytes
    }
    return known
  }

  const dropValue = (known: Held<string>) => {
    values.delete(known.shared)
    bytes -= known.bytes
  }

  const hold = (value: string): string => {
    const known = entry(value)
    known.holds++
    return known.shared
  }

  const release = (value: string) => {
    const known = values.get(value)
    // Defensive: a value given back more often than taken must not take another holder's hold.
    if (known === undefined || known.holds === 0) return
    known.holds--
    if (known.holds === 0 && !known.kept) dropValue(known)
  }

  const dropList = (known: HeldList) => {
    lists.delete(known.key)
    bytes -= known.bytes
    for (const item of known.shared) release(item)
  }

  /** Past `limit` kept values and lists, drops those no one holds and stops keeping the rest. */
  const startOver = () => {
    for (const known of lists.values()) {
      if (!known.kept) continue
      known.kept = false
      if (known.holds === 0) dropList(known)
    }
    for (const known of values.values()) {
      if (!known.kept) continue
      known.kept = false
      if (known.holds === 0) dropValue(known)
    }
    kept = 0
  }

  const keep = (known: Held<unknown>) => {
    if (known.kept) return
    if (kept >= limit) startOver()
    known.kept = true
    kept++
  }

  const one = (value: string): string => {
    const known = entry(value)
    keep(known)
    return known.shared
  }

  const listEntry = (items: readonly string[]): HeldList => {
    // JSON, not a join: no separator a value may hold can make two lists one key.
    const key = JSON.stringify(items)
    let known = lists.get(key)
    if (known === undefined) {
      // The list holds each of its values while it is kept or held.
      const shared = items.map(hold)
      known = {
        shared,
        key,
        holds: 0,
        kept: false,
        bytes: entryBytes + stringBytes(key) + 16 + 8 * shared.length,
      }
      lists.set(key, known)
      bytes += known.bytes
    }
    return known
  }

  const list = (items: readonly string[]): string[] => {
    const known = listEntry(items)
    keep(known)
    return known.shared
  }

  const holdList = (items: readonly string[]): string[] => {
    const known = listEntry(items)
    known.holds++
    return known.shared
  }

  const releaseList = (items: readonly string[]) => {
    const known = lists.get(JSON.stringify(items))
    if (known === undefined || known.holds === 0) return
    known.holds--
    if (known.holds === 0 && !known.kept) dropList(known)
  }

  return {
    one,
    list,
    hold,
    holdList,
    release,
    releaseList,
    size: () => values.size + lists.size,
    bytes: () => bytes,
  }
}
