// The buffered entries of the correlator's SQLite checkpoints (checkpoint-store.ts writes the rest): the
// entries a save added go into chunk rows of up to `chunkEntries` (correlate_chunks), one insert for all of
// them where a row per entry cost an insert each; an entry removed later is marked dead in its chunk (its
// index in the chunk's `dead` list, kept beside the row in correlate_chunk_dead and rewritten by the save
// that removed it), and a chunk goes with its last live entry (or moves its live ones on once half
// dead). The identities and details the entries name are written once each (correlate_values), shared
// and counted in memory. Rows of earlier versions (correlate_buffer: a row per entry keyed by its seq;
// correlate_entries: one JSON object per entry) move to chunks when their partition is loaded.
// Every write runs inside the caller's transaction (a save); after a rollback, forget() the partition: what
// its rows name is read again from them.
import type Database from 'better-sqlite3'
import { NerveError } from '../runtime/errors.ts'
import type { SerializedEntry } from './correlator-state.ts'
import type { CoreDetail, EdgeDetail, Who } from './entry-slots.ts'

export type CheckpointEntries = {
  /** A save's entry changes, inside its transaction. */
  apply(partition: number, removed: readonly string[], added: readonly SerializedEntry[]): void
  /** The partition's entries in buffer (seq) order, rows of earlier versions moved to chunks first. */
  load(partition: number): SerializedEntry[]
  /** Drops what is kept in memory of the partition's rows (its save rolled back). */
  forget(partition: number): void
}

/**
 * A value many buffered entries share (an identity or an event's detail): written once in correlate_values
 * and named by number in their rows. Keyed by the object the correlator hands out (its details are
 * interned, an agent's identities shared), counted by the entries that name it, deleted with the last.
 */
type SharedValue = { ref: number; count: number; key: object }
/**
 * Up to `chunkEntries` entries added by one save, written as one row (correlate_chunks): one insert where a
 * row per entry cost an insert each. An entry removed later is marked dead in its chunk (`dead`: indexes in
 * the row, rewritten with the save that removed it); the row goes with its last live entry.
 */
type Chunk = { id: number; count: number; dead: number[]; written: boolean; changed: boolean }
type LiveEntry = { chunk: Chunk; index: number; identity: number; detail: number }
/** What a partition's rows name: its shared values, its chunks and, per buffered entry, where it lies. */
type PartitionRows = {
  byObject: Map<object, SharedValue>
  byRef: Map<number, SharedValue>
  entries: Map<string, LiveEntry>
  nextRef: number
  nextChunk: number
  /** The chunk this save fills, not written yet, and its entries' rows. */
  open?: { chunk: Chunk; rows: EntryRow[] }
  /** Written chunks whose dead marks this save changed. */
  changed: Chunk[]
}

/** Most entries in one chunk row: bounds what marking one of them dead rewrites. */
export const chunkEntries = 256

/**
 * A buffered entry's row in its chunk: `[seq, id, time, rules, expiry, lag, resolved_by, identity ref,
 * detail ref, agent]`, then for an edge its output and, when it folded repeats, their count and latest
 * time. Its side is its detail's. About 200 bytes where the entry's JSON took 710.
 */
type EntryRow = [
  number,
  string,
  number,
  string[],
  number,
  number,
  string,
  number,
  number,
  string,
  ...unknown[],
]

export function createCheckpointEntries(db: Database.Database): CheckpointEntries {
  db.exec(`
    CREATE TABLE IF NOT EXISTS correlate_entries (
      partition INTEGER NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, entry TEXT NOT NULL,
      PRIMARY KEY (partition, id));
    CREATE TABLE IF NOT EXISTS correlate_buffer (
      partition INTEGER NOT NULL, seq INTEGER NOT NULL, entry TEXT NOT NULL,
      PRIMARY KEY (partition, seq)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS correlate_chunks (
      partition INTEGER NOT NULL, chunk INTEGER NOT NULL, entries TEXT NOT NULL, dead TEXT NOT NULL,
      PRIMARY KEY (partition, chunk)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS correlate_chunk_dead (
      partition INTEGER NOT NULL, chunk INTEGER NOT NULL, dead TEXT NOT NULL,
      PRIMARY KEY (partition, chunk)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS correlate_values (
      partition INTEGER NOT NULL, ref INTEGER NOT NULL, value TEXT NOT NULL,
      PRIMARY KEY (partition, ref)) WITHOUT ROWID;`)
  const selectLegacyEntries = db.prepare<[number], { entry: string }>(
    'SELECT entry FROM correlate_entries WHERE partition = ? ORDER BY seq',
  )
  const deleteLegacyEntries = db.prepare<[number]>('DELETE FROM correlate_entries WHERE partition = ?')
  const selectBuffer = db.prepare<[number], { seq: number; entry: string }>(
    'SELECT seq, entry FROM correlate_buffer WHERE partition = ? ORDER BY seq',
  )
  const hasBuffer = db.prepare<[number], { found: number }>(
    'SELECT 1 AS found FROM correlate_buffer WHERE partition = ? LIMIT 1',
  )
  const deleteBuffer = db.prepare<[number]>('DELETE FROM correlate_buffer WHERE partition = ?')
  const lastChunk = db.prepare<[number], { chunk: number | null }>(
    'SELECT max(chunk) AS chunk FROM correlate_chunks WHERE partition = ?',
  )
  const selectChunks = db.prepare<[number], { chunk: number; entries: string; dead: string }>(
    'SELECT c.chunk, c.entries, coalesce(d.dead, c.dead) AS dead FROM correlate_chunks c ' +
      'LEFT JOIN correlate_chunk_dead d ON d.partition = c.partition AND d.chunk = c.chunk ' +
      'WHERE c.partition = ? ORDER BY c.chunk',
  )
  const insertChunk = db.prepare<[number, number, string, string]>(
    'INSERT OR REPLACE INTO correlate_chunks (partition, chunk, entries, dead) VALUES (?, ?, ?, ?)',
  )
  // A chunk's later dead marks, in a row of their own: an UPDATE of the chunk row would rewrite the whole
  // record, its entries' ~57 KB of overflow pages for each save that marks one of them (58 KB of WAL and
  // ~130 µs of CPU per mark, against 2 KB and 6 µs for the row-per-entry delete it replaced).
  const updateDead = db.prepare<[number, number, string]>(
    'INSERT OR REPLACE INTO correlate_chunk_dead (partition, chunk, dead) VALUES (?, ?, ?)',
  )
  const deleteDead = db.prepare<[number, number]>(
    'DELETE FROM correlate_chunk_dead WHERE partition = ? AND chunk = ?',
  )
  const selectChunk = db.prepare<[number, number], { entries: string }>(
    'SELECT entries FROM correlate_chunks WHERE partition = ? AND chunk = ?',
  )
  const deleteChunk = db.prepare<[number, number]>(
    'DELETE FROM correlate_chunks WHERE partition = ? AND chunk = ?',
  )
  const selectValues = db.prepare<[number], { ref: number; value: string }>(
    'SELECT ref, value FROM correlate_values WHERE partition = ?',
  )
  const insertValue = db.prepare<[number, number, string]>(
    'INSERT OR REPLACE INTO correlate_values (partition, ref, value) VALUES (?, ?, ?)',
  )
  const deleteValue = db.prepare<[number, number]>(
    'DELETE FROM correlate_values WHERE partition = ? AND ref = ?',
  )

  const partitions = new Map<number, PartitionRows>()
  const acquire = (partition: number, rows: PartitionRows, value: object) => {
    let shared = rows.byObject.get(value)
    if (!shared) {
      shared = { ref: rows.nextRef++, count: 0, key: value }
      rows.byObject.set(value, shared)
      rows.byRef.set(shared.ref, shared)
      insertValue.run(partition, shared.ref, JSON.stringify(value))
    }
    shared.count++
    return shared.ref
  }
  const release = (partition: number, rows: PartitionRows, ref: number) => {
    const shared = rows.byRef.get(ref)
    if (!shared || --shared.count > 0) return
    rows.byRef.delete(ref)
    rows.byObject.delete(shared.key)
    deleteValue.run(partition, ref)
  }
  const removeEntry = (partition: number, rows: PartitionRows, id: string) => {
    const live = rows.entries.get(id)
    if (!live) return
    rows.entries.delete(id)
    const { chunk } = live
    chunk.dead.push(live.index)
    if (chunk.written && !chunk.changed) {
      chunk.changed = true
      rows.changed.push(chunk)
    }
    release(partition, rows, live.identity)
    release(partition, rows, live.detail)
  }
  /** Writes the open chunk (unless every entry in it is dead already). */
  const closeChunk = (partition: number, rows: PartitionRows) => {
    const open = rows.open
    if (!open) return
    rows.open = undefined
    const { chunk } = open
    chunk.written = true
    if (chunk.dead.length < chunk.count)
      insertChunk.run(partition, chunk.id, JSON.stringify(open.rows), JSON.stringify(chunk.dead))
  }
  /** Ends a save's entry changes: the open chunk written, the dead marks of the others rewritten. */
  const writeChunks = (partition: number, rows: PartitionRows) => {
    compactChunks(partition, rows)
    closeChunk(partition, rows)
    for (const chunk of rows.changed) {
      chunk.changed = false
      if (chunk.dead.length >= chunk.count) {
        deleteChunk.run(partition, chunk.id)
        deleteDead.run(partition, chunk.id)
      } else updateDead.run(partition, chunk.id, JSON.stringify(chunk.dead))
    }
    rows.changed = []
  }
  /** Appends an entry's row to the open chunk (a new one when none is open). */
  const appendRow = (
    partition: number,
    rows: PartitionRows,
    row: EntryRow,
    identity: number,
    detail: number,
  ) => {
    rows.open ??= {
      chunk: { id: rows.nextChunk++, count: 0, dead: [], written: false, changed: false },
      rows: [],
    }
    const { chunk } = rows.open
    rows.entries.set(row[1], { chunk, index: chunk.count++, identity, detail })
    rows.open.rows.push(row)
    if (chunk.count >= chunkEntries) closeChunk(partition, rows)
  }
  const addEntry = (partition: number, rows: PartitionRows, e: SerializedEntry) => {
    const identity = acquire(partition, rows, e.who.identity)
    const detail = acquire(partition, rows, e.detail)
    // An entry written again (its repeats changed) is marked dead where it was; its values are counted once.
    removeEntry(partition, rows, e.id)
    const row: EntryRow = [
      e.seq,
      e.id,
      e.time,
      e.rules,
      e.expiry,
      e.lag,
      e.who.resolved_by,
      identity,
      detail,
      e.agent,
    ]
    if (e.side === 'edge') {
      row.push(e.output ?? '')
      if (e.repeats !== undefined) row.push(e.repeats, e.last_time)
    }
    appendRow(partition, rows, row, identity, detail)
  }
  /**
   * A chunk this save left at least half dead moves its live entries to the open chunk (rows as stored, same
   * values) and goes: the watched agent decides which of its entries outlive the others, and one live entry
   * kept in every chunk would otherwise keep every chunk, the rows growing with its traffic rather than with
   * the buffer (bench: 5,120 rows for 275 live entries). Kept rows stay within twice the live entries plus
   * the chunks of one save; each entry dead pays for at most one moved.
   */
  const compactChunks = (partition: number, rows: PartitionRows) => {
    for (const chunk of rows.changed) {
      const live = chunk.count - chunk.dead.length
      if (live <= 0 || live * 2 > chunk.count) continue
      const stored = selectChunk.get(partition, chunk.id)
      if (!stored) throw new NerveError('INTERNAL', `Correlator checkpoint lost chunk ${chunk.id}.`)
      const chunkRows = JSON.parse(stored.entries) as EntryRow[]
      for (let index = 0; index < chunkRows.length; index++) {
        const row = chunkRows[index] as EntryRow
        const entry = rows.entries.get(row[1])
        if (!entry || entry.chunk !== chunk || entry.index !== index) continue
        chunk.dead.push(index)
        appendRow(partition, rows, row, entry.identity, entry.detail)
      }
    }
  }

  /** A partition's buffered entries as its chunks hold them, and what those rows name. */
  const readEntries = (partition: number): { entries: SerializedEntry[]; rows: PartitionRows } => {
    const rows: PartitionRows = {
      byObject: new Map(),
      byRef: new Map(),
      entries: new Map(),
      nextRef: 0,
      nextChunk: 0,
      changed: [],
    }
    const values = new Map<number, object>()
    for (const v of selectValues.iterate(partition)) {
      values.set(v.ref, JSON.parse(v.value) as object)
      rows.nextRef = Math.max(rows.nextRef, v.ref + 1)
    }
    const shared = (ref: number) => {
      const key = values.get(ref)
      if (key === undefined) throw new NerveError('INTERNAL', `Correlator checkpoint names no value ${ref}.`)
      let value = rows.byRef.get(ref)
      if (!value) {
        value = { ref, count: 0, key }
        rows.byRef.set(ref, value)
        rows.byObject.set(key, value)
      }
      value.count++
      return key
    }
    const entries: SerializedEntry[] = []
    let ordered = true
    for (const stored of selectChunks.iterate(partition)) {
      const chunkRows = JSON.parse(stored.entries) as EntryRow[]
      const dead = JSON.parse(stored.dead) as number[]
      const chunk: Chunk = { id: stored.chunk, count: chunkRows.length, dead, written: true, changed: false }
      rows.nextChunk = Math.max(rows.nextChunk, chunk.id + 1)
      const deadIndexes = new Set(dead)
      for (let index = 0; index < chunkRows.length; index++) {
        if (deadIndexes.has(index)) continue
        const [seq, id, time, rules, expiry, lag, resolvedBy, identityRef, detailRef, agent, ...edge] =
          chunkRows[index] as EntryRow
        const detail = shared(detailRef) as EdgeDetail | CoreDetail
        const e: SerializedEntry = {
          side: detail.side,
          agent,
          id,
          time,
          rules,
          expiry,
          seq,
          lag,
          who: {
            resolved_by: resolvedBy as Who['resolved_by'],
            identity: shared(identityRef) as Who['identity'],
          },
          detail,
        }
        if (detail.side === 'edge') {
          e.output = edge[0] as string
          if (edge.length > 1) {
            e.repeats = edge[1] as number
            e.last_time = edge[2] as number
          }
        }
        if (entries.length > 0 && (entries.at(-1) as SerializedEntry).seq > seq) ordered = false
        entries.push(e)
        rows.entries.set(id, { chunk, index, identity: identityRef, detail: detailRef })
      }
    }
    // An entry written again lies in a later chunk than entries buffered after it.
    if (!ordered) entries.sort((a, b) => a.seq - b.seq)
    return { entries, rows }
  }
  const rowsOf = (partition: number) => {
    let rows = partitions.get(partition)
    if (!rows) {
      rows = readEntries(partition).rows
      partitions.set(partition, rows)
    }
    return rows
  }
  /**
   * Entries of earlier versions move to the chunks, equal values shared (keyed by their JSON once), in one
   * transaction with the removal of their old rows.
   */
  const moveLegacyEntries = db.transaction((partition: number, legacy: SerializedEntry[]) => {
    const rows = rowsOf(partition)
    const canonical = new Map<string, object>()
    const same = <T extends object>(value: T): T => {
      const text = JSON.stringify(value)
      const known = canonical.get(text)
      if (known) return known as T
      canonical.set(text, value)
      return value
    }
    for (const e of legacy) {
      e.detail = same(e.detail)
      e.who = { ...e.who, identity: same(e.who.identity) }
      addEntry(partition, rows, e)
    }
    writeChunks(partition, rows)
    deleteLegacyEntries.run(partition)
  })
  /**
   * Rows of the previous version (a row per entry in correlate_buffer, keyed by its seq) move to chunks as
   * they are: the same values, named by the same numbers, in one transaction with their removal.
   */
  const moveBufferRows = db.transaction((partition: number) => {
    const moved: EntryRow[] = []
    for (const { seq, entry } of selectBuffer.iterate(partition))
      moved.push([seq, ...(JSON.parse(entry) as unknown[])] as EntryRow)
    const first = (lastChunk.get(partition)?.chunk ?? -1) + 1
    for (let i = 0; i < moved.length; i += chunkEntries) {
      const rows = JSON.stringify(moved.slice(i, i + chunkEntries))
      insertChunk.run(partition, first + i / chunkEntries, rows, '[]')
    }
    deleteBuffer.run(partition)
  })

  return {
    apply: (partition, removed, added) => {
      const rows = rowsOf(partition)
      for (const id of removed) removeEntry(partition, rows, id)
      for (const e of added) addEntry(partition, rows, e)
      writeChunks(partition, rows)
    },
    load: (partition) => {
      const legacy = selectLegacyEntries.all(partition).map((r) => JSON.parse(r.entry) as SerializedEntry)
      partitions.delete(partition)
      if (hasBuffer.get(partition)) moveBufferRows(partition)
      if (legacy.length > 0) moveLegacyEntries(partition, legacy)
      const { entries, rows } = readEntries(partition)
      partitions.set(partition, rows)
      return entries
    },
    forget: (partition) => {
      partitions.delete(partition)
    },
  }
}
