// D1's "seen?": the ids of the buffered entries, answered without a string per id. An open-addressing table
// of id hashes, per cell two Int32s, slot + 1 (0: empty) and the id's hash, so probing and deleting read
// the table alone, not the slots of other ids; linear probing, at most three quarters full. The ids
// themselves live in the slots (packed into words where their shape allows: packed-ids.ts).
import type { EntrySlots } from './entry-slots.ts'
import { hashPacked, hashText, idWords, packId, samePacked, textId } from './packed-ids.ts'

export type SeenIds = {
  /** True while an entry with this id is buffered. */
  has(id: string): boolean
  /** The slot of the entry the last has() that answered true found. */
  found(): number
  /** Keeps the id in the slot's words (or as text) and returns its hash. */
  store(slot: number, id: string): number
  /** Adds a slot whose id store() kept; `count`: the entries buffered with it. */
  add(slot: number, hash: number, count: number): void
  /** Removes a slot before its id is dropped from it. */
  remove(slot: number): void
}

export function createSeenIds(s: EntrySlots, initialCapacity: number): SeenIds {
  let table = new Int32Array(initialCapacity * 4)
  let tableMask = initialCapacity * 2 - 1

  // has() is asked just before insert() with the same id: its packed words, kind and hash are kept for insert.
  const probe = new Int32Array(idWords)
  let lastId = ''
  let lastKind = textId
  let lastHash = 0
  let lastFound = -1
  const has = (id: string): boolean => {
    const kind = packId(id, probe, 0)
    const h = kind === textId ? hashText(id) : hashPacked(kind, probe, 0)
    lastId = id
    lastKind = kind
    lastHash = h
    for (let i = h & tableMask; table[2 * i] !== 0; i = (i + 1) & tableMask) {
      if (table[2 * i + 1] !== h) continue
      const slot = (table[2 * i] as number) - 1
      if ((s.flags[slot] as number) >> 1 !== kind) continue
      if (kind === textId ? s.idText.get(slot) === id : samePacked(s.words, slot * idWords, probe, 0)) {
        lastFound = slot
        return true
      }
    }
    return false
  }
  const tableInsert = (slot: number, h: number) => {
    let i = h & tableMask
    while (table[2 * i] !== 0) i = (i + 1) & tableMask
    table[2 * i] = slot + 1
    table[2 * i + 1] = h
  }
  const tableDelete = (slot: number, h: number) => {
    let i = h & tableMask
    while (table[2 * i] !== slot + 1) i = (i + 1) & tableMask
    // Backward-shift deletion keeps every probe run unbroken.
    for (let j = (i + 1) & tableMask; table[2 * j] !== 0; j = (j + 1) & tableMask) {
      const home = (table[2 * j + 1] as number) & tableMask
      if (((j - home) & tableMask) >= ((j - i) & tableMask)) {
        table[2 * i] = table[2 * j] as number
        table[2 * i + 1] = table[2 * j + 1] as number
        i = j
      }
    }
    table[2 * i] = 0
  }
  const tableGrow = () => {
    const old = table
    table = new Int32Array(old.length * 2)
    tableMask = table.length / 2 - 1
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] !== 0) tableInsert((old[i] as number) - 1, old[i + 1] as number)
    }
  }
  /** The hash of the id kept in `slot`, as has() computed it. */
  const hashOf = (slot: number) => {
    const kind = (s.flags[slot] as number) >> 1
    return kind === textId
      ? hashText(s.idText.get(slot) as string)
      : hashPacked(kind, s.words, slot * idWords)
  }

  const store = (slot: number, id: string): number => {
    const at = slot * idWords
    let kind = lastKind
    let h = lastHash
    if (id === lastId) s.words.set(probe, at)
    else {
      kind = packId(id, s.words, at)
      h = kind === textId ? hashText(id) : hashPacked(kind, s.words, at)
    }
    if (kind === textId) s.idText.set(slot, id)
    s.flags[slot] = (kind << 1) | (s.flags[slot] as number)
    return h
  }

  return {
    has,
    found: () => lastFound,
    store,
    add: (slot, hash, count) => {
      if (4 * count > 3 * (tableMask + 1)) tableGrow()
      tableInsert(slot, hash)
    },
    remove: (slot) => tableDelete(slot, hashOf(slot)),
  }
}
