// Correlator checkpoints in a key-value log: a compacted topic on Kafka, shared by every instance, so a
// partition that moves restores where it stopped. Kept as a changelog with snapshots, as Kafka Streams
// keeps a state store: each batch writes one delta (its added and removed entries, the meta part, the
// incidents and revoke marks when they changed), so a save costs what the batch changed. Once the deltas
// since the last snapshot outweigh it (and `snapshotAfterBytes`), the whole state is written again in
// chunks under a new generation, a manifest naming it is written last, and the keys it replaces are
// deleted. A restore reads the manifest's chunks and applies the later deltas in order.
//
// Keys, under the partition's key K:
//   K/delta/<n>            one save's changes (the incidents of the agents that changed); n counts up from 1;
//                          or, for changes larger than one record may be, { parts }: their JSON text is
//   K/delta-part/<n>/<i>   in these pieces, written before the K/delta/<n> that makes them count
//   K/snapshot/<g>/<i>     chunk i of snapshot generation g: entries
//   K/snapshot             the manifest: generation, last delta included, chunk count, meta, lists
//   K                      a whole checkpoint as earlier versions wrote it: read, then replaced
//
// Every write is a single key or made valid by one written after it, so a crash between any two leaves a
// state some batch ended with: a delta is one message, and chunks count only once their manifest is.
//
// A save is fenced by the partition's ownership (save's `owned`, Subscription.owns on Kafka): checked
// before each write, so a save in flight when the partition moves writes nothing after the rebalance
// begins. Its delta numbers are the ones the next owner goes on from, and its late head, manifest or
// deletions would overwrite or remove that owner's keys (a head naming pieces the next owner's restore
// deleted as unfinished made the partition impossible to restore). Kafka itself fences nothing here: a
// write already sent when the rebalance begins (the producer retrying it) can still land after the next
// owner's restore (docs/kafka.md).

import type { KeyValueLog } from '../bus/bus.ts'
import { NerveError } from '../runtime/errors.ts'
import type { AgentBaselineRecord, BaselineChanges } from './agent-baseline.ts'
import type { CheckpointStore, PartitionCheckpoint } from './checkpoint-store.ts'
import type { AgentIncidents, CorrelatorLists, CorrelatorMeta, SerializedEntry } from './correlator-state.ts'
import type { IncidentRecord } from './group-incidents.ts'
import type { RevokeRecord } from './revoke-confirmations.ts'

type Delta = {
  offset: number
  meta: CorrelatorMeta
  incidents?: AgentIncidents[]
  revoked?: RevokeRecord[]
  /** Every incident and revoke mark, as deltas of earlier versions carried them. */
  lists?: CorrelatorLists
  added: SerializedEntry[]
  removed: string[]
  baseline?: BaselineChanges
}
/** A snapshot chunk holds buffered entries and the agents' baselines. */
type ChunkItem = SerializedEntry | { baseline: AgentBaselineRecord }
type Manifest = {
  generation: number
  /** The last delta the snapshot includes. */
  delta: number
  chunks: number
  /** The chunks' JSON size, to weigh later deltas against. */
  bytes: number
  offset: number
  meta: CorrelatorMeta
  lists: CorrelatorLists
}
/** A delta too large for one record: its JSON text is in `parts` pieces under K/delta-part/<n>/. */
type DeltaHead = { parts: number }
/** What the log holds under a checkpoint's keys. */
export type CheckpointValue = Delta | DeltaHead | string | Manifest | ChunkItem[] | PartitionCheckpoint

/** Where a partition's changelog stands, to number the next delta and decide on snapshots. */
type Position = {
  generation: number
  chunks: number
  /** The first delta the current snapshot does not include. */
  firstDelta: number
  lastDelta: number
  deltaBytes: number
  snapshotBytes: number
  /** A whole checkpoint of an earlier version, replaced by the next snapshot. */
  legacy: boolean
  /** Deltas since the snapshot written in pieces, with their piece counts (deleted with them). */
  parted: Map<number, number>
}

const chunkBytes = 1024 * 1024
/**
 * Longest JSON text of one delta record: a save covers up to correlation.checkpoint.max_records records,
 * whose changes can exceed what one Kafka record may hold (kafka.max_message_bytes, 1 MiB by default, and
 * UTF-8 takes up to 3 bytes per character here); longer deltas are written in pieces.
 */
const deltaPartChars = 256 * 1024

export function createKeyValueCheckpointStore(
  log: KeyValueLog<CheckpointValue>,
  keyOf: (partition: number) => string,
  options: { snapshotAfterBytes?: number; deltaPartChars?: number } = {},
): CheckpointStore {
  const snapshotAfterBytes = options.snapshotAfterBytes ?? 4 * chunkBytes
  const partChars = Math.max(1, options.deltaPartChars ?? deltaPartChars)
  const positions = new Map<number, Position>()
  const deltaKey = (base: string, n: number) => `${base}/delta/${n}`
  const chunkKey = (base: string, generation: number, i: number) => `${base}/snapshot/${generation}/${i}`
  const partKey = (base: string, n: number, i: number) => `${base}/delta-part/${n}/${i}`

  const load = async (partition: number): Promise<PartitionCheckpoint | undefined> => {
    const base = keyOf(partition)
    const manifest = (await log.get(`${base}/snapshot`)) as Manifest | undefined
    const legacy = manifest ? undefined : ((await log.get(base)) as PartitionCheckpoint | undefined)
    const deltas = [...(await log.scan(`${base}/delta/`))]
      .map(([key, value]) => ({
        n: Number(key.slice(key.lastIndexOf('/') + 1)),
        delta: value as Delta | DeltaHead,
      }))
      .sort((a, b) => a.n - b.n)
    const position: Position = {
      generation: manifest?.generation ?? 0,
      chunks: manifest?.chunks ?? 0,
      firstDelta: (manifest?.delta ?? 0) + 1,
      lastDelta: manifest?.delta ?? 0,
      deltaBytes: 0,
      snapshotBytes: 0,
      legacy: legacy !== undefined,
      parted: new Map(),
    }
    const entries = new Map<string, SerializedEntry>()
    const baselines = new Map<string, AgentBaselineRecord>()
    const incidents = new Map<string, IncidentRecord[]>()
    let revoked: RevokeRecord[] = []
    const setLists = (lists: CorrelatorLists) => {
      incidents.clear()
      for (const i of lists.incidents) incidents.set(i.agent, [...(incidents.get(i.agent) ?? []), i])
      revoked = lists.revoked
    }
    let checkpoint: PartitionCheckpoint | undefined
    if (manifest) {
      for (let i = 0; i < manifest.chunks; i++) {
        const chunk = (await log.get(chunkKey(base, manifest.generation, i))) as ChunkItem[] | undefined
        if (!chunk) {
          throw new NerveError(
            'INTERNAL',
            `The checkpoint of partition ${partition} names ${manifest.chunks} chunks under ${base}/snapshot/${manifest.generation}/, and chunk ${i} is missing.`,
          )
        }
        for (const item of chunk) {
          if ('baseline' in item) baselines.set(item.baseline.agent, item.baseline)
          else entries.set(item.id, item)
        }
      }
      position.snapshotBytes = manifest.bytes
      setLists(manifest.lists)
      checkpoint = { offset: manifest.offset, state: { ...manifest.meta, ...manifest.lists, entries: [] } }
    } else if (legacy) {
      setLists(legacy.state)
      for (const e of legacy.state.entries) entries.set(e.id, e)
      for (const r of legacy.state.baseline ?? []) baselines.set(r.agent, r)
      position.snapshotBytes = JSON.stringify(legacy).length
      checkpoint = legacy
    }
    const stale: string[] = []
    // A whole checkpoint of an earlier version that a crash kept from being deleted after its snapshot.
    if (manifest && (await log.get(base)) !== undefined) stale.push(base)
    for (const { n, delta: stored } of deltas) {
      if (n < position.firstDelta) {
        stale.push(deltaKey(base, n))
        continue
      }
      let delta = stored as Delta
      if ('parts' in stored) {
        const pieces: string[] = []
        for (let i = 0; i < stored.parts; i++) {
          const piece = await log.get(partKey(base, n, i))
          if (typeof piece !== 'string') {
            throw new NerveError(
              'INTERNAL',
              `Delta ${n} of the checkpoint of partition ${partition} names ${stored.parts} pieces, and piece ${i} is missing.`,
            )
          }
          pieces.push(piece)
        }
        delta = JSON.parse(pieces.join('')) as Delta
        position.parted.set(n, stored.parts)
      }
      for (const id of delta.removed) entries.delete(id)
      for (const e of delta.added) entries.set(e.id, e)
      for (const agent of delta.baseline?.removed ?? []) baselines.delete(agent)
      for (const r of delta.baseline?.upserted ?? []) baselines.set(r.agent, r)
      if (delta.lists) setLists(delta.lists)
      for (const { agent, incidents: list } of delta.incidents ?? []) {
        if (list.length === 0) incidents.delete(agent)
        else incidents.set(agent, list)
      }
      if (delta.revoked) revoked = delta.revoked
      checkpoint = { offset: delta.offset, state: { ...delta.meta, incidents: [], revoked: [], entries: [] } }
      position.lastDelta = n
      position.deltaBytes += JSON.stringify(delta).length
    }
    // Pieces of a delta that was never completed, or that a snapshot replaced.
    for (const key of (await log.scan(`${base}/delta-part/`)).keys()) {
      const [n, i] = key.slice(`${base}/delta-part/`.length).split('/').map(Number)
      if (!(Number(i) < (position.parted.get(Number(n)) ?? 0))) stale.push(key)
    }
    // Chunks of a snapshot cut short, or of one whose keys a crash kept from being deleted.
    const current = `${base}/snapshot/${position.generation}/`
    for (const key of (await log.scan(`${base}/snapshot/`)).keys()) {
      if (!key.startsWith(current) || Number(key.slice(current.length)) >= position.chunks) stale.push(key)
    }
    await log.putMany(stale.map((key) => [key, undefined] as const))
    positions.set(partition, position)
    if (!checkpoint) return undefined
    const ordered = [...entries.values()].sort((a, b) => a.seq - b.seq)
    const state = {
      ...checkpoint.state,
      incidents: [...incidents.values()].flat(),
      revoked,
      entries: ordered,
    }
    if (baselines.size > 0) state.baseline = [...baselines.values()]
    return { offset: checkpoint.offset, state }
  }

  const save: CheckpointStore['save'] = async (partition, { offset, changes, snapshot, owned }) => {
    const base = keyOf(partition)
    const fence = () => {
      if (owned && !owned()) {
        throw new NerveError(
          'BUS_UNAVAILABLE',
          `Partition ${partition} is no longer owned here; its checkpoint is left to its new owner.`,
          { retriable: true },
        )
      }
    }
    const put = (key: string, value: CheckpointValue) => {
      fence()
      return log.put(key, value)
    }
    const putMany = (values: readonly (readonly [string, CheckpointValue | undefined])[]) => {
      fence()
      return log.putMany(values)
    }
    let position = positions.get(partition)
    if (!position) {
      // Never loaded here: whatever the log holds for the partition is older than this state.
      fence()
      await load(partition)
      position = positions.get(partition) as Position
    }
    const delta: Delta = { offset, meta: changes.meta, added: changes.added, removed: changes.removed }
    if (changes.incidents) delta.incidents = changes.incidents
    if (changes.revoked) delta.revoked = changes.revoked
    if (changes.baseline) delta.baseline = changes.baseline
    const n = position.lastDelta + 1
    const text = JSON.stringify(delta)
    if (text.length <= partChars) await put(deltaKey(base, n), delta)
    else {
      // The pieces first: they count only once the head naming them is written.
      const parts = Math.ceil(text.length / partChars)
      await putMany(
        Array.from(
          { length: parts },
          (_, i) => [partKey(base, n, i), text.slice(i * partChars, (i + 1) * partChars)] as const,
        ),
      )
      await put(deltaKey(base, n), { parts })
      position.parted.set(n, parts)
    }
    position.lastDelta = n
    position.deltaBytes += text.length
    if (position.deltaBytes < Math.max(snapshotAfterBytes, position.snapshotBytes)) return

    const state = snapshot()
    const chunks: ChunkItem[][] = []
    let chunk: ChunkItem[] = []
    let size = 0
    let bytes = 0
    const items: ChunkItem[] = [...state.entries, ...(state.baseline ?? []).map((r) => ({ baseline: r }))]
    for (const e of items) {
      const length = JSON.stringify(e).length
      if (chunk.length > 0 && size + length > chunkBytes) {
        chunks.push(chunk)
        chunk = []
        size = 0
      }
      chunk.push(e)
      size += length
      bytes += length
    }
    if (chunk.length > 0) chunks.push(chunk)
    const generation = position.generation + 1
    await putMany(chunks.map((chunk, i) => [chunkKey(base, generation, i), chunk] as const))
    const { entries: _entries, baseline: _baseline, ...rest } = state
    const { incidents, revoked, ...meta } = rest
    const manifest: Manifest = {
      generation,
      delta: n,
      chunks: chunks.length,
      bytes,
      offset,
      meta,
      lists: { incidents, revoked },
    }
    await put(`${base}/snapshot`, manifest)
    const replaced: string[] = []
    for (let i = 0; i < position.chunks; i++) replaced.push(chunkKey(base, position.generation, i))
    for (let d = position.firstDelta; d <= n; d++) {
      replaced.push(deltaKey(base, d))
      for (let i = 0; i < (position.parted.get(d) ?? 0); i++) replaced.push(partKey(base, d, i))
    }
    if (position.legacy) replaced.push(base)
    positions.set(partition, {
      generation,
      chunks: chunks.length,
      firstDelta: n + 1,
      lastDelta: n,
      deltaBytes: 0,
      snapshotBytes: bytes,
      legacy: false,
      parted: new Map(),
    })
    await putMany(replaced.map((key) => [key, undefined] as const))
  }

  return { load, save, close: () => log.close() }
}
