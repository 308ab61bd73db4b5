// A binary min-heap of buffered entries by (expiry, seq). The expiry keys live in their own packed array
// of doubles so sifting reads contiguous memory instead of chasing one object per comparison.
export type Expiring = { readonly expiry: number; readonly seq: number }

export type ExpiryQueue<T extends Expiring> = {
  push(item: T): void
  /** The item that expires first, without removing it. */
  peek(): T | undefined
  pop(): T | undefined
  size(): number
}

export function createExpiryQueue<T extends Expiring>(): ExpiryQueue<T> {
  const keys: number[] = []
  const items: T[] = []

  const less = (i: number, j: number) => {
    const a = keys[i] as number
    const b = keys[j] as number
    return a < b || (a === b && (items[i] as T).seq < (items[j] as T).seq)
  }
  const swap = (i: number, j: number) => {
    const k = keys[i] as number
    keys[i] = keys[j] as number
    keys[j] = k
    const t = items[i] as T
    items[i] = items[j] as T
    items[j] = t
  }

  const push = (item: T) => {
    keys.push(item.expiry)
    items.push(item)
    let i = keys.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!less(i, parent)) break
      swap(i, parent)
      i = parent
    }
  }

  const pop = (): T | undefined => {
    const top = items[0]
    const lastKey = keys.pop()
    const lastItem = items.pop()
    if (keys.length > 0 && lastItem !== undefined && lastKey !== undefined) {
      keys[0] = lastKey
      items[0] = lastItem
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < keys.length && less(l, m)) m = l
        if (r < keys.length && less(r, m)) m = r
        if (m === i) break
        swap(i, m)
        i = m
      }
    }
    return top
  }

  return { push, pop, peek: () => items[0], size: () => items.length }
}
