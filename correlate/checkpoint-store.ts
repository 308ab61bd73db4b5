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
import { baselineRecordJson } from './baseline-record-json.ts'
import { type CheckpointEntries, createCheckpointEntries } from './checkpoint-entries.ts'
import type {
  AgentIncidents,
  CorrelatorChanges,
  CorrelatorLists,
  CorrelatorMeta,
  CorrelatorState,
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
  /**
   * `snapshot` gives the whole state, for a store that rewrites it now and then (never the SQLite one).
   * `owned`, for a store shared by instances (a Kafka topic): checked before each write, and once false
   * the save writes nothing more and rejects (the partition moved; its new owner writes its checkpoint).
   */
  save(
    partition: number,
    update: {
      offset: number
      changes: CorrelatorChanges
      snapshot: () => CorrelatorState
      owned?: () => boolean
    },
  ): Promise<void>
  close(): Promise<void>
}

/**
 * One SQLite file (runtime/sqlite-file.ts), per partition: a meta row, a row with the revoke marks, a row per
 * agent with its open incidents, one per agent with its baseline, and the buffered entries in chunks of up
 * to 256 that one save added, with the values they share (checkpoint-entries.ts).
 */
export function createSqliteCheckpointStore(file: string): CheckpointStore {
  let sqlite: SqliteFile
  let entries: CheckpointEntries
  try {
    sqlite = openSqliteFile(file)
    sqlite.db.exec(`
      CREATE TABLE IF NOT EXISTS correlate_meta (partition INTEGER PRIMARY KEY, offset INTEGER NOT NULL, meta TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS correlate_lists (partition INTEGER PRIMARY KEY, lists TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS correlate_baseline (
        partition INTEGER NOT NULL, agent TEXT NOT NULL, record TEXT NOT NULL,
        PRIMARY KEY (partition, agent));
      CREATE TABLE IF NOT EXISTS correlate_incidents (
        partition INTEGER NOT NULL, agent TEXT NOT NULL, incidents TEXT NOT NULL,
        PRIMARY KEY (partition, agent));`)
    entries = createCheckpointEntries(sqlite.db)
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
  const upsertMeta = db.prepare<[number, number, string]>(
    'INSERT INTO correlate_meta (partition, offset, meta) VALUES (?, ?, ?) ' +
      'ON CONFLICT(partition) DO UPDATE SET offset = excluded.offset, meta = excluded.meta',
  )
  // Rows rewritten by many saves are updated in place (ON CONFLICT DO UPDATE): INSERT OR REPLACE deleted the
  // row and inserted it again (an agent's incidents under a new rowid at the table's end, dirtying the old
  // and the new page and the key's index twice): about a fifth fewer bytes written per incidents row.
  const upsertLists = db.prepare<[number, string]>(
    'INSERT INTO correlate_lists (partition, lists) VALUES (?, ?) ' +
      'ON CONFLICT(partition) DO UPDATE SET lists = excluded.lists',
  )
  const selectIncidents = db.prepare<[number], { incidents: string }>(
    'SELECT incidents FROM correlate_incidents WHERE partition = ? ORDER BY agent',
  )
  const upsertIncidents = db.prepare<[number, string, string]>(
    'INSERT INTO correlate_incidents (partition, agent, incidents) VALUES (?, ?, ?) ' +
      'ON CONFLICT(partition, agent) DO UPDATE SET incidents = excluded.incidents',
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

  const apply = db.transaction((partition: number, offset: number, changes: CorrelatorChanges) => {
    for (const agent of changes.baseline?.removed ?? []) deleteBaseline.run(partition, agent)
    for (const r of changes.baseline?.upserted ?? [])
      upsertBaseline.run(partition, r.agent, baselineRecordJson(r))
    entries.apply(partition, changes.removed, changes.added)
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
      const buffered = entries.load(partition)
      const baseline = selectBaseline.all(partition).map((r) => JSON.parse(r.record) as AgentBaselineRecord)
      const state: CorrelatorState = { ...meta, ...lists, entries: buffered }
      if (baseline.length > 0) state.baseline = baseline
      return { offset: row.offset, state }
    },
    save: async (partition, { offset, changes }) => {
      try {
        apply(partition, offset, changes)
      } catch (err) {
        // Rolled back: what the partition's rows name is read again from them when next needed.
        entries.forget(partition)
        throw err
      }
      await sqlite.sync()
    },
    close: () => sqlite.close(),
  }
}
