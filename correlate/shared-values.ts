// One copy of each repeated string. Every event from the bus brings its own copies (JSON.parse makes
// fresh strings), so what the correlator keeps for long (details, identities) takes the shared copy
// instead: thousands of hosts and agents then hold a few rule names, tags, namespaces and accounts, not
// thousands. Consulted only when such a thing is created, never per event. Bounded: past `limit` values
// it starts over (what was kept stays valid, only no longer shared).

export type SharedValues = {
  one(value: string): string
  /** One list per distinct sequence of values, itself made of shared values. */
  list(values: readonly string[]): string[]
}

export function createSharedValues(limit = 20_000): SharedValues {
  const values = new Map<string, string>()
  const lists = new Map<string, string[]>()

  const one = (value: string): string => {
    const known = values.get(value)
    if (known !== undefined) return known
    if (values.size >= limit) values.clear()
    values.set(value, value)
    return value
  }

  const list = (items: readonly string[]): string[] => {
    // JSON, not a join: no separator a value may hold can make two lists one key.
    const key = JSON.stringify(items)
    const known = lists.get(key)
    if (known !== undefined) return known
    if (lists.size >= limit) lists.clear()
    const shared = items.map(one)
    lists.set(key, shared)
    return shared
  }

  return { one, list }
}
