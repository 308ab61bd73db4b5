// Durable per-partition checkpoints of the correlator: stream time, buffers, seen ids, incidents, revoke
// marks, and the last bus offset they include. Saved incrementally after every batch (entries added and
// removed, the agents whose baseline changed, the small meta part, and the incidents and revoke marks only
// when they changed), so a checkpoint
// costs what the batch changed, not the whole state.
// A save is durable when it resolves: the bus may commit the batch after it. The SQLite store is here; the
// one over a compacted topic, for several correlate copies on Kafka, is key-value-checkpoint-store.ts.
import { NerveError } from '../runtime/errors.ts'
import { openSqliteFile, type SqliteFile } from '../runtime/sqlite-file.ts'
import type { AgentBaselineRecord } from './agent-baseline.ts'
import type { CoreDetail, EdgeDetail, Who } from './agent-windows.ts'
import { baselineRecordJson } from './baseline-record-json.ts'
import type {
  AgentIncidents,
  CorrelatorChanges,
  CorrelatorLists,
  CorrelatorMeta,
  CorrelatorState,
  SerializedEntry,
} from './correlator-state.ts'
import type { IncidentRecord } from './group-incidents.ts'
import type { RevokeRecord } from './revoke-confirmations.ts'

export type PartitionCheckpoint = {
  /** Offset of the last record whose effects are in `state`; records at or below it are skipped. */
  offset: number
  state: CorrelatorState
}

export type CheckpointStore = {
  load(partition: number): Promise<PartitionCheckpoint | undefined>
  /** `snapshot` gives the whole state, for a store that rewrites it now and then (never the SQLite one). */
  save(
    partition: number,
    update: { offset: number; changes: CorrelatorChanges; snapshot: () => CorrelatorState },
  ): Promise<void>
  close(): Promise<void>
}

/**
 * A value many buffered entries share (an identity or an event's detail): written once in correlate_values
 * and named by number in their rows. Keyed by the object the correlator hands out (its details are
 * interned, an agent's identities shared), counted by the entries that name it, deleted with the last.
 */
type SharedValue = { ref: number; count: number; key: object }
type LiveEntry = { seq: number; identity: number; detail: number }
/** What a partition's rows name: its shared values and, per buffered entry, its row and values. */
type PartitionRows = {
  byObject: Map<object, SharedValue>
  byRef: Map<number, SharedValue>
  entries: Map<string, LiveEntry>
  nextRef: number
}

/**
 * A buffered entry's row: `[id, time, rules, expiry, lag, resolved_by, identity ref, detail ref, agent]`,
 * then for an edge its output and, when it folded repeats, their count and latest time. Its side is its
 * detail's, its seq the row's key. About 300 bytes where the entry's JSON took 710.
 */
type EntryRow = [string, number, string[], number, number, string, number, number, string, ...unknown[]]

/**
 * One SQLite file (runtime/sqlite-file.ts), per partition: a meta row, a row with the revoke marks, a row per
 * agent with its open incidents, one per agent with its baseline, one per buffered entry (correlate_buffer,
 * keyed by its seq, so rows are appended in order) and one per value the entries share (correlate_values).
 * Entries of earlier versions (correlate_entries, one JSON object each) move to the compact rows on load.
 */
export function createSqliteCheckpointStore(file: string): CheckpointStore {
  let sqlite: SqliteFile
  try {
    sqlite = openSqliteFile(file)
    sqlite.db.exec(`
      CREATE TABLE IF NOT EXISTS correlate_meta (partition INTEGER PRIMARY KEY, offset INTEGER NOT NULL, meta TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS correlate_lists (partition INTEGER PRIMARY KEY, lists TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS correlate_entries (
        partition INTEGER NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, entry TEXT NOT NULL,
        PRIMARY KEY (partition, id));
      CREATE TABLE IF NOT EXISTS correlate_baseline (
        partition INTEGER NOT NULL, agent TEXT NOT NULL, record TEXT NOT NULL,
        PRIMARY KEY (partition, agent));
      CREATE TABLE IF NOT EXISTS correlate_incidents (
        partition INTEGER NOT NULL, agent TEXT NOT NULL, incidents TEXT NOT NULL,
        PRIMARY KEY (partition, agent));
      CREATE TABLE IF NOT EXISTS correlate_buffer (
        partition INTEGER NOT NULL, seq INTEGER NOT NULL, entry TEXT NOT NULL,
        PRIMARY KEY (partition, seq)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS correlate_values (
        partition INTEGER NOT NULL, ref INTEGER NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (partition, ref)) WITHOUT ROWID;`)
  } catch (cause) {
    throw new NerveError('INTERNAL', `Cannot open correlator checkpoints at ${file}.`, { cause })
  }
  const db = sqlite.db
  const selectMeta = db.prepare<[number], { offset: number; meta: string }>(
    'SELECT offset, meta FROM correlate_meta WHERE partition = ?',
  )
  const selectLists = db.prepare<[number], { lists: string }>(
    'SELECT lists FROM correlate_lists WHERE partition = ?',
  )
  const selectLegacyEntries = db.prepare<[number], { entry: string }>(
    'SELECT entry FROM correlate_entries WHERE partition = ? ORDER BY seq',
  )
  const deleteLegacyEntries = db.prepare<[number]>('DELETE FROM correlate_entries WHERE partition = ?')
  const selectBuffer = db.prepare<[number], { seq: number; entry: string }>(
    'SELECT seq, entry FROM correlate_buffer WHERE partition = ? ORDER BY seq',
  )
  const insertBuffer = db.prepare<[number, number, string]>(
    'INSERT OR REPLACE INTO correlate_buffer (partition, seq, entry) VALUES (?, ?, ?)',
  )
  const deleteBuffer = db.prepare<[number, number]>(
    'DELETE FROM correlate_buffer WHERE partition = ? AND seq = ?',
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
  const upsertMeta = db.prepare<[number, number, string]>(
    'INSERT INTO correlate_meta (partition, offset, meta) VALUES (?, ?, ?) ' +
      'ON CONFLICT(partition) DO UPDATE SET offset = excluded.offset, meta = excluded.meta',
  )
  const upsertLists = db.prepare<[number, string]>(
    'INSERT OR REPLACE INTO correlate_lists (partition, lists) VALUES (?, ?)',
  )
  const selectIncidents = db.prepare<[number], { incidents: string }>(
    'SELECT incidents FROM correlate_incidents WHERE partition = ? ORDER BY agent',
  )
  const upsertIncidents = db.prepare<[number, string, string]>(
    'INSERT OR REPLACE INTO correlate_incidents (partition, agent, incidents) VALUES (?, ?, ?)',
  )
  const deleteIncidents = db.prepare<[number, string]>(
    'DELETE FROM correlate_incidents WHERE partition = ? AND agent = ?',
  )
  const selectBaseline = db.prepare<[number], { record: string }>(
    'SELECT record FROM correlate_baseline WHERE partition = ? ORDER BY rowid',
  )
  const upsertBaseline = db.prepare<[number, string, string]>(
    'INSERT INTO correlate_baseline (partition, agent, record) VALUES (?, ?, ?) ' +
      'ON CONFLICT(partition, agent) DO UPDATE SET record = excluded.record',
  )
  const deleteBaseline = db.prepare<[number, string]>(
    'DELETE FROM correlate_baseline WHERE partition = ? AND agent = ?',
  )
  const writeIncidents = (partition: number, changed: readonly AgentIncidents[]) => {
    for (const { agent, incidents } of changed) {
      if (incidents.length === 0) deleteIncidents.run(partition, agent)
      else upsertIncidents.run(partition, agent, JSON.stringify(incidents))
    }
  }
  const writeRevoked = (partition: number, revoked: readonly RevokeRecord[]) =>
    upsertLists.run(partition, JSON.stringify({ incidents: [], revoked }))

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
    deleteBuffer.run(partition, live.seq)
    release(partition, rows, live.identity)
    release(partition, rows, live.detail)
  }
  const addEntry = (partition: number, rows: PartitionRows, e: SerializedEntry) => {
    const identity = acquire(partition, rows, e.who.identity)
    const detail = acquire(partition, rows, e.detail)
    // An entry written again (its repeats changed) replaces its row; its values are counted once.
    removeEntry(partition, rows, e.id)
    const row: unknown[] = [
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
    insertBuffer.run(partition, e.seq, JSON.stringify(row))
    rows.entries.set(e.id, { seq: e.seq, identity, detail })
  }

  /** A partition's buffered entries as its rows hold them, and what those rows name. */
  const readEntries = (partition: number): { entries: SerializedEntry[]; rows: PartitionRows } => {
    const rows: PartitionRows = { byObject: new Map(), byRef: new Map(), entries: new Map(), nextRef: 0 }
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
    for (const { seq, entry } of selectBuffer.iterate(partition)) {
      const [id, time, rules, expiry, lag, resolvedBy, identityRef, detailRef, agent, ...edge] = JSON.parse(
        entry,
      ) as EntryRow
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
      entries.push(e)
      rows.entries.set(id, { seq, identity: identityRef, detail: detailRef })
    }
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
   * Entries of earlier versions move to the compact rows, equal values shared (keyed by their JSON once),
   * in one transaction with the removal of their old rows.
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
    deleteLegacyEntries.run(partition)
  })

  const apply = db.transaction((partition: number, offset: number, changes: CorrelatorChanges) => {
    const rows = rowsOf(partition)
    for (const agent of changes.baseline?.removed ?? []) deleteBaseline.run(partition, agent)
    for (const r of changes.baseline?.upserted ?? [])
      upsertBaseline.run(partition, r.agent, baselineRecordJson(r))
    for (const id of changes.removed) removeEntry(partition, rows, id)
    for (const e of changes.added) addEntry(partition, rows, e)
    if (changes.incidents) writeIncidents(partition, changes.incidents)
    if (changes.revoked) writeRevoked(partition, changes.revoked)
    upsertMeta.run(partition, offset, JSON.stringify(changes.meta))
  })
  /** Checkpoints of earlier versions kept every incident in the lists row: they move to a row per agent. */
  const splitIncidents = db.transaction((partition: number, lists: CorrelatorLists) => {
    const byAgent = new Map<string, IncidentRecord[]>()
    for (const i of lists.incidents) byAgent.set(i.agent, [...(byAgent.get(i.agent) ?? []), i])
    writeIncidents(
      partition,
      [...byAgent].map(([agent, incidents]) => ({ agent, incidents })),
    )
    writeRevoked(partition, lists.revoked)
  })

  return {
    load: async (partition) => {
      const row = selectMeta.get(partition)
      if (!row) return undefined
      const meta = JSON.parse(row.meta) as CorrelatorMeta & Partial<CorrelatorLists>
      const listsRow = selectLists.get(partition)
      // A checkpoint written before the lists had a row of their own kept them in the meta row.
      const lists: CorrelatorLists = listsRow
        ? JSON.parse(listsRow.lists)
        : { incidents: meta.incidents ?? [], revoked: meta.revoked ?? [] }
      if (lists.incidents.length > 0) splitIncidents(partition, lists)
      lists.incidents = selectIncidents
        .all(partition)
        .flatMap((r) => JSON.parse(r.incidents) as IncidentRecord[])
      const legacy = selectLegacyEntries.all(partition).map((r) => JSON.parse(r.entry) as SerializedEntry)
      partitions.delete(partition)
      if (legacy.length > 0) moveLegacyEntries(partition, legacy)
      const { entries, rows } = readEntries(partition)
      partitions.set(partition, rows)
      const baseline = selectBaseline.all(partition).map((r) => JSON.parse(r.record) as AgentBaselineRecord)
      const state: CorrelatorState = { ...meta, ...lists, entries }
      if (baseline.length > 0) state.baseline = baseline
      return { offset: row.offset, state }
    },
    save: async (partition, { offset, changes }) => {
      try {
        apply(partition, offset, changes)
      } catch (err) {
        // Rolled back: what the partition's rows name is read again from them when next needed.
        partitions.delete(partition)
        throw err
      }
      await sqlite.sync()
    },
    close: () => sqlite.close(),
  }
}
