// The chunk rows of the correlator's SQLite checkpoints (checkpoint-entries.ts) must stay proportional to
// the live buffered entries, whatever the order in which entries leave: the watched agent controls its
// alert volume and which of its entries outlive the others, so it could otherwise keep one live entry in
// every chunk and make the file (and each restart's read) grow with its traffic, not with the buffer.
import { statSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { chunkEntries, createCheckpointEntries } from '../../../correlate/checkpoint-entries.ts'
import { createSqliteCheckpointStore } from '../../../correlate/checkpoint-store.ts'
import type { CorrelatorState, SerializedEntry } from '../../../correlate/correlator-state.ts'
import { tempDir } from '../../helpers/random-names.ts'

const T0 = Date.UTC(2024, 7, 1, 13, 30)
const identity = { kind: 'k8s', namespace: 'agents', pod: 'data-cleaner-1' }
const detail = { side: 'edge', rule: 'Outbound connection', priority: 'warning' }

const entry = (id: string, seq: number): SerializedEntry =>
  ({
    side: 'edge',
    agent: 'data-cleaner',
    id,
    time: T0 + seq,
    rules: ['any'],
    expiry: T0 + seq + 60_000,
    seq,
    lag: 0,
    who: { resolved_by: 'k8s', identity },
    detail,
    output: `alert ${id}`,
  }) as unknown as SerializedEntry

const meta = (seq: number) => ({ version: 1 as const, stream_time: T0 + seq, seq, last_sweep: null })

describe('correlator checkpoint chunks', () => {
  it('keep stored entry rows within twice the live entries when one entry of each chunk outlives the rest', async () => {
    const file = join(tempDir('nerve-checkpoint'), 'c.sqlite')
    const store = createSqliteCheckpointStore(file)
    const live = new Map<string, SerializedEntry>()
    const pinned: string[] = []
    const keepPinned = 20
    let seq = 0
    let flooded: string[] = []
    for (let save = 0; save < 200; save++) {
      // Each save: a chunk's worth of new entries; the flood of the save before leaves, and one entry of
      // each save stays for `keepPinned` saves.
      const added: SerializedEntry[] = []
      for (let i = 0; i < chunkEntries; i++) added.push(entry(`s${save}-${i}`, seq++))
      const removed = [...flooded]
      if (pinned.length >= keepPinned) removed.push(pinned.shift() as string)
      for (const id of removed) live.delete(id)
      for (const e of added) live.set(e.id, e)
      pinned.push((added[0] as SerializedEntry).id)
      flooded = added.slice(1).map((e) => e.id)
      await store.save(0, {
        offset: save,
        changes: { meta: meta(seq), added, removed },
        snapshot: () => ({}) as CorrelatorState,
      })
    }
    await store.close()
    const db = new Database(file, { readonly: true })
    const stored = (db.prepare('SELECT entries FROM correlate_chunks').all() as { entries: string }[]).reduce(
      (n, r) => n + (JSON.parse(r.entries) as unknown[]).length,
      0,
    )
    db.close()
    expect(live.size).toBe(keepPinned + chunkEntries - 1)
    expect(stored).toBeLessThanOrEqual(2 * live.size + chunkEntries)
    const reopened = createSqliteCheckpointStore(file)
    const state = (await reopened.load(0))?.state
    await reopened.close()
    expect(state?.entries).toEqual([...live.values()].sort((a, b) => a.seq - b.seq))
  })

  it('restore what a model of the buffer holds over random adds, removals, rewrites and restarts', async () => {
    const file = join(tempDir('nerve-checkpoint'), 'c.sqlite')
    let store = createSqliteCheckpointStore(file)
    let state = 0x2545f491
    const random = (n: number) => {
      state = (state * 1_103_515_245 + 12_345) >>> 0
      return state % n
    }
    const live = new Map<string, SerializedEntry>()
    let seq = 0
    for (let save = 0; save < 40; save++) {
      const removed: string[] = []
      const ids = [...live.keys()]
      for (let i = random(150); i > 0 && ids.length > 0; i--) {
        const [id] = ids.splice(random(ids.length), 1) as [string]
        live.delete(id)
        removed.push(id)
      }
      const added: SerializedEntry[] = []
      for (let i = random(200); i > 0; i--) {
        const e = entry(`s${save}-${i}`, seq++)
        live.set(e.id, e)
        added.push(e)
      }
      // Entries written again, their repeats changed, at their own seq.
      for (const id of [...live.keys()].filter(() => random(20) === 0)) {
        const e = { ...(live.get(id) as SerializedEntry), repeats: save, last_time: T0 + save }
        live.set(id, e)
        added.push(e)
      }
      await store.save(0, {
        offset: save,
        changes: { meta: meta(seq), added, removed },
        snapshot: () => ({}) as CorrelatorState,
      })
      if (random(4) === 0) {
        await store.close()
        store = createSqliteCheckpointStore(file)
        const loaded = (await store.load(0))?.state
        expect(loaded?.entries).toEqual([...live.values()].sort((a, b) => a.seq - b.seq))
        const db = new Database(file, { readonly: true })
        const stored = (db.prepare('SELECT entries FROM correlate_chunks').all() as { entries: string }[])
          .map((r) => (JSON.parse(r.entries) as unknown[]).length)
          .reduce((a, b) => a + b, 0)
        db.close()
        expect(stored).toBeLessThanOrEqual(2 * live.size + added.length)
      }
    }
    await store.close()
  })

  it('mark an entry dead without rewriting the entries of its chunk', () => {
    const file = join(tempDir('nerve-checkpoint'), 'c.sqlite')
    const db = new Database(file)
    db.pragma('journal_mode = WAL')
    db.pragma('wal_autocheckpoint = 0')
    const entries = createCheckpointEntries(db)
    const chunks = 20
    const added = Array.from({ length: chunks * chunkEntries }, (_, i) => entry(`e${i}`, i))
    db.transaction(() => entries.apply(0, [], added))()
    db.pragma('wal_checkpoint(TRUNCATE)')
    // One entry leaves each chunk (the watched agent's entries, one per save, shed in one burst).
    const removed = Array.from({ length: chunks }, (_, c) => `e${c * chunkEntries + 7}`)
    db.transaction(() => entries.apply(0, removed, []))()
    const walBytes = statSync(`${file}-wal`).size
    db.close()
    // A chunk's row is ~20 KB here: rewriting it for each mark put 20 of them in the WAL.
    expect(walBytes / chunks).toBeLessThan(4096)
    const reopened = new Database(file)
    const restored = createCheckpointEntries(reopened).load(0)
    reopened.close()
    expect(restored).toEqual(added.filter((e) => !removed.includes(e.id)))
  })
})
