// The revoke outbox, durable on local disk (SQLite through runtime/sqlite-file.ts): every decision, one
// delivery per decision and target with its body (signed afresh on each attempt, the bytes never change),
// disabled targets (with the fingerprint of the config entry each was disabled under, keyed by the data dir's
// revoke-target-key, which is not in the outbox: target-fingerprint.ts), and the outcome records waiting to
// be published. A decision is committed before it is delivered and synced to disk before the bus offset is
// committed, so a crash between decision and delivery loses nothing and a restart delivers what is still
// pending. Delivery states are committed without waiting for the disk: a committed transaction survives a
// crash of the process; only a power loss can forget an attempt, which then repeats with the same
// webhook-id (receivers deduplicate on it). Decisions are forgotten past a horizon (forget): suppressions
// and, once delivered, revokes; a forgotten revoke leaves its incident's rounds behind (forgotten_revokes),
// so a later round never reuses a forgotten key.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../runtime/logger.ts'
import { openSqliteFile } from '../runtime/sqlite-file.ts'
import type { RevokeOutcome } from '../schemas/types.ts'
import { type MergedRevoke, type PastRevoke, revokeDecisionId } from './revoke-policy.ts'
import { readRevokeTargetKey } from './revoke-target-key.ts'

export type OutboxDelivery = {
  decision_id: string
  target: string
  correlation_id: string
  incident_id: string
  agent_id: string
  body: string
  attempts: number
  next_attempt_at: number
}

export type NewOutcome = Omit<RevokeOutcome, 'id'>

export type DisabledTarget = { reason: string; disabled_at: number; entry: string | null }

export type DecisionEntry = {
  correlation_id: string
  decision_id: string
  incident_id: string
  agent_id: string
  status: RevokeOutcome['status']
  reason: string
  time: number
  /** The webhook body, when the decision sends; one delivery per target. */
  body?: string
  targets: readonly string[]
}

export type DeliveryUpdate = {
  state: 'pending' | 'sent' | 'failed'
  attempts: number
  next_attempt_at: number
}

export type RevokeOutbox = {
  /** The correlation ids among `ids` that were decided already (redelivered by the bus). */
  decided(ids: readonly string[]): Set<string>
  /** Revokes that went ahead (sent or dry-run), for the policy's limits after a restart. */
  pastRevokes(): PastRevoke[]
  /**
   * Incidents counted as revoked through a merge, for the policy after a restart: those written since the
   * last write that forgot the older ones (recordDecisions' `forgetMarksThrough`).
   */
  mergedRevokes(): MergedRevoke[]
  /**
   * Decisions, their deliveries and their outcome records, and the marks the batch's merges taught (kept
   * at the latest revoke per incident), in one transaction. Marks whose revoke is at or before
   * `forgetMarksThrough` are deleted in it: the policy holds a revoke back for one per-agent period after
   * the incident's last revoke, so an older mark decides nothing (see mergedRevokes).
   */
  recordDecisions(
    entries: readonly DecisionEntry[],
    merged?: readonly MergedRevoke[],
    forgetMarksThrough?: number,
  ): OutboxDelivery[]
  /**
   * Deletes up to `limit` decisions decided at or before `through`, with their deliveries and outcome
   * records, oldest first, whose outcomes are all on the bus: suppressions keyed by their own correlation
   * (no later outcome can reuse their ids), and revokes (sent or dry-run) none of whose deliveries is still
   * pending. The caller's horizon covers the rate-limit periods (the limits read revokes) and the bus's
   * retention (a redelivery's duplicate check reads every decision). A forgotten revoke adds a round to its
   * incident's row in forgotten_revokes: an incident can stay alive for days, and its next round must not
   * take its first key again (revokeDecisionId).
   */
  forget(through: number, limit: number): { decisions: number; deliveries: number; outcomes: number }
  /** Incidents whose revokes were forgotten: the last one's time and how many, for the policy's rounds. */
  forgottenRevokes(): MergedRevoke[]
  /** A delivery's new state and its outcome record, in one transaction. */
  updateDelivery(delivery: OutboxDelivery, update: DeliveryUpdate, outcome: NewOutcome): void
  pendingDeliveries(): OutboxDelivery[]
  pendingCount(): number
  /** The key of the disabled targets' fingerprints, from its own file beside the outbox's. */
  targetKey: Buffer
  /**
   * Targets disabled (a 410), by label: why, when, and the fingerprint of the config entry they were
   * disabled under (null when an earlier version disabled them).
   */
  disabledTargets(): Map<string, DisabledTarget>
  disableTarget(target: string, time: number, reason: string, entry: string): void
  /** Enables a disabled target again (its config entry changed since). */
  enableTarget(target: string): void
  /** The oldest outcomes not yet published, in the order they were recorded. */
  unpublishedOutcomes(limit: number): { outcomes: RevokeOutcome[]; through: number }
  /**
   * Everything up to `through` is on the bus. Kept in memory and written with the next transaction (or on
   * close): an fsync saved per publish; after a crash a few outcomes are published twice, which their
   * deterministic ids make harmless for every consumer.
   */
  markPublished(through: number): void
  /** Resolves once every transaction so far is on disk. */
  sync(): Promise<void>
  close(): Promise<void>
}

const schema = `
CREATE TABLE IF NOT EXISTS decisions (
  correlation_id TEXT PRIMARY KEY, decision_id TEXT NOT NULL, incident_id TEXT NOT NULL,
  agent_id TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL, time INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS decisions_status ON decisions (status);
CREATE TABLE IF NOT EXISTS deliveries (
  decision_id TEXT NOT NULL, target TEXT NOT NULL, correlation_id TEXT NOT NULL, incident_id TEXT NOT NULL,
  agent_id TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL, PRIMARY KEY (decision_id, target));
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state);
CREATE TABLE IF NOT EXISTS targets (
  target TEXT PRIMARY KEY, disabled_at INTEGER NOT NULL, reason TEXT NOT NULL, entry TEXT);
CREATE TABLE IF NOT EXISTS outcomes (
  id TEXT PRIMARY KEY, decision_id TEXT NOT NULL, n INTEGER NOT NULL, record TEXT NOT NULL,
  published INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS outcomes_unpublished ON outcomes (published);
CREATE INDEX IF NOT EXISTS outcomes_decision ON outcomes (decision_id, n);
CREATE TABLE IF NOT EXISTS merged_revokes (
  incident_id TEXT PRIMARY KEY, time INTEGER NOT NULL, rounds INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS merged_revokes_time ON merged_revokes (time);
CREATE TABLE IF NOT EXISTS forgotten_revokes (
  incident_id TEXT PRIMARY KEY, time INTEGER NOT NULL, rounds INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS forgotten_revokes_time ON forgotten_revokes (time);
`

/**
 * Incidents whose forgotten revokes are remembered, at most (the oldest go first): 70 bytes or so each, so
 * about 7 MB; at the default global limit (20 an hour, every revoke its own incident) 208 days of them.
 */
const maxForgottenIncidents = 100_000

/**
 * The decisions past a horizon that nothing needs any more: suppressions, and revokes with every outcome on
 * the bus and no delivery pending. Each candidate's outcomes and deliveries are found by its decision id
 * (`+o.published`, `+v.state` keep SQLite off the `published` and `state` indexes): through the first, every
 * candidate read every unpublished outcome, and a batch prunes right after writing its own, unpublished yet:
 * 500 held-back correlations took 75–88 ms of the main thread, 5,000 unpublished outcomes 650–810 ms.
 */
export const forgettableSql = `SELECT d.rowid, d.decision_id, d.incident_id, d.status, d.time FROM decisions d
  WHERE (d.forgettable = 1 OR d.status IN ('pending', 'dry_run')) AND d.time <= ?
  AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.decision_id = d.decision_id AND +o.published = 0)
  AND NOT EXISTS (SELECT 1 FROM deliveries v WHERE v.decision_id = d.decision_id AND +v.state = 'pending')
  ORDER BY d.time LIMIT ?`

export function openRevokeOutbox(dataDir: string, log?: Logger): RevokeOutbox {
  mkdirSync(dataDir, { recursive: true })
  const targetKey = readRevokeTargetKey(dataDir, log)
  const sqlite = openSqliteFile(join(dataDir, 'revoke-outbox.sqlite'))
  const db = sqlite.db
  db.exec(schema)
  // Outboxes written before retention: their suppressions may share their incident's key, and stay.
  const columns = db.prepare<[], { name: string }>('PRAGMA table_info(decisions)').all()
  if (!columns.some((c) => c.name === 'forgettable'))
    db.exec('ALTER TABLE decisions ADD COLUMN forgettable INTEGER NOT NULL DEFAULT 0')
  db.exec('CREATE INDEX IF NOT EXISTS decisions_forgettable ON decisions (forgettable, time)')
  // Outboxes written before a disabled target could be enabled again: its entry is not known (null).
  const targetColumns = db.prepare<[], { name: string }>('PRAGMA table_info(targets)').all()
  if (!targetColumns.some((c) => c.name === 'entry')) db.exec('ALTER TABLE targets ADD COLUMN entry TEXT')

  const sql = {
    decided: db.prepare<[string], { correlation_id: string }>(
      'SELECT correlation_id FROM decisions WHERE correlation_id = ?',
    ),
    merged: db.prepare<[], MergedRevoke>('SELECT incident_id, time, rounds FROM merged_revokes'),
    upsertMerged: db.prepare(
      `INSERT INTO merged_revokes (incident_id, time, rounds) VALUES (@incident_id, @time, @rounds)
       ON CONFLICT (incident_id) DO UPDATE SET time = max(time, excluded.time), rounds = max(rounds, excluded.rounds)`,
    ),
    forgetMerged: db.prepare('DELETE FROM merged_revokes WHERE time <= ?'),
    past: db.prepare<[], PastRevoke>(
      "SELECT incident_id, agent_id, time FROM decisions WHERE status IN ('pending', 'dry_run')",
    ),
    insertDecision: db.prepare(
      `INSERT INTO decisions (correlation_id, decision_id, incident_id, agent_id, status, reason, time, forgettable)
       VALUES (@correlation_id, @decision_id, @incident_id, @agent_id, @status, @reason, @time, @forgettable)`,
    ),
    forgettable: db.prepare<
      [number, number],
      { rowid: number; decision_id: string; incident_id: string; status: string; time: number }
    >(forgettableSql),
    deleteDecision: db.prepare('DELETE FROM decisions WHERE rowid = ?'),
    deleteDeliveries: db.prepare('DELETE FROM deliveries WHERE decision_id = ?'),
    deleteOutcomes: db.prepare('DELETE FROM outcomes WHERE decision_id = ?'),
    addForgotten: db.prepare(
      `INSERT INTO forgotten_revokes (incident_id, time, rounds) VALUES (?, ?, 1)
       ON CONFLICT (incident_id) DO UPDATE SET time = max(time, excluded.time), rounds = rounds + 1`,
    ),
    forgotten: db.prepare<[], MergedRevoke>(
      'SELECT incident_id, time, rounds FROM forgotten_revokes ORDER BY time, incident_id',
    ),
    trimForgotten: db.prepare(
      `DELETE FROM forgotten_revokes WHERE rowid IN (SELECT rowid FROM forgotten_revokes ORDER BY time
       LIMIT max(0, (SELECT COUNT(*) FROM forgotten_revokes) - ${maxForgottenIncidents}))`,
    ),
    insertDelivery: db.prepare(
      `INSERT OR IGNORE INTO deliveries (decision_id, target, correlation_id, incident_id, agent_id, body, state,
       attempts, next_attempt_at) VALUES (@decision_id, @target, @correlation_id, @incident_id, @agent_id, @body,
       'pending', 0, @next_attempt_at)`,
    ),
    updateDelivery: db.prepare(
      `UPDATE deliveries SET state = @state, attempts = @attempts, next_attempt_at = @next_attempt_at
       WHERE decision_id = @decision_id AND target = @target`,
    ),
    pending: db.prepare<[], OutboxDelivery>(
      `SELECT decision_id, target, correlation_id, incident_id, agent_id, body, attempts, next_attempt_at
       FROM deliveries WHERE state = 'pending' ORDER BY next_attempt_at`,
    ),
    pendingCount: db.prepare<[], { n: number }>(
      "SELECT COUNT(*) AS n FROM deliveries WHERE state = 'pending'",
    ),
    targets: db.prepare<[], DisabledTarget & { target: string }>(
      'SELECT target, reason, disabled_at, entry FROM targets',
    ),
    disable: db.prepare(
      'INSERT OR REPLACE INTO targets (target, disabled_at, reason, entry) VALUES (?, ?, ?, ?)',
    ),
    enable: db.prepare('DELETE FROM targets WHERE target = ?'),
    nextN: db.prepare<[string], { n: number }>(
      'SELECT COALESCE(MAX(n), 0) + 1 AS n FROM outcomes WHERE decision_id = ?',
    ),
    insertOutcome: db.prepare('INSERT INTO outcomes (id, decision_id, n, record) VALUES (?, ?, ?, ?)'),
    unpublished: db.prepare<[number, number], { rowid: number; record: string }>(
      'SELECT rowid, record FROM outcomes WHERE published = 0 AND rowid > ? ORDER BY rowid LIMIT ?',
    ),
    markPublished: db.prepare('UPDATE outcomes SET published = 1 WHERE published = 0 AND rowid <= ?'),
  }

  let publishedThrough = 0
  let publishedWritten = 0
  const writePublished = () => {
    if (publishedThrough === publishedWritten) return
    sql.markPublished.run(publishedThrough)
    publishedWritten = publishedThrough
  }

  const addOutcome = (outcome: NewOutcome) => {
    const n = (sql.nextN.get(outcome.decision_id) as { n: number }).n
    const id = `${outcome.decision_id}:${n}`
    sql.insertOutcome.run(id, outcome.decision_id, n, JSON.stringify({ id, ...outcome }))
  }

  const recordDecisions = db.transaction(
    (entries: readonly DecisionEntry[], merged: readonly MergedRevoke[], forgetMarksThrough?: number) => {
      writePublished()
      for (const mark of merged) sql.upsertMerged.run(mark)
      if (forgetMarksThrough !== undefined) sql.forgetMerged.run(forgetMarksThrough)
      const deliveries: OutboxDelivery[] = []
      for (const entry of entries) {
        const { body, targets, ...decision } = entry
        // A suppression under its own correlation's key: once forgotten, nothing records under it again.
        const forgettable =
          entry.status === 'suppressed' && entry.decision_id !== revokeDecisionId(entry.incident_id)
        sql.insertDecision.run({ ...decision, forgettable: forgettable ? 1 : 0 })
        addOutcome({
          decision_id: entry.decision_id,
          time: entry.time,
          correlation_id: entry.correlation_id,
          incident_id: entry.incident_id,
          agent_id: entry.agent_id,
          status: entry.status,
          reason: entry.reason,
          attempts: 0,
        })
        if (body === undefined) continue
        for (const target of targets) {
          const delivery: OutboxDelivery = {
            decision_id: entry.decision_id,
            target,
            correlation_id: entry.correlation_id,
            incident_id: entry.incident_id,
            agent_id: entry.agent_id,
            body,
            attempts: 0,
            next_attempt_at: entry.time,
          }
          if (sql.insertDelivery.run(delivery).changes === 1) deliveries.push(delivery)
        }
      }
      return deliveries
    },
  )

  const forget = db.transaction((through: number, limit: number) => {
    writePublished()
    const deleted = { decisions: 0, deliveries: 0, outcomes: 0 }
    let revokes = 0
    for (const row of sql.forgettable.all(through, limit)) {
      if (row.status !== 'suppressed') {
        sql.addForgotten.run(row.incident_id, row.time)
        revokes++
        deleted.deliveries += sql.deleteDeliveries.run(row.decision_id).changes
      }
      deleted.outcomes += sql.deleteOutcomes.run(row.decision_id).changes
      deleted.decisions += sql.deleteDecision.run(row.rowid).changes
    }
    if (revokes > 0) sql.trimForgotten.run()
    return deleted
  })

  const updateDelivery = db.transaction(
    (delivery: OutboxDelivery, update: DeliveryUpdate, outcome: NewOutcome) => {
      writePublished()
      sql.updateDelivery.run({ ...update, decision_id: delivery.decision_id, target: delivery.target })
      addOutcome(outcome)
    },
  )

  /**
   * One read transaction for the whole batch: in WAL mode a statement outside a transaction opens and
   * closes a read transaction of its own (the WAL index's header and a read lock each time), which cost
   * more than the look-up itself: 2.2–2.5 µs per id against 0.6–1.0 on the main thread.
   */
  const decided = db.transaction(
    (ids: readonly string[]) => new Set(ids.filter((id) => sql.decided.get(id) !== undefined)),
  )

  return {
    decided: (ids) => (ids.length === 0 ? new Set() : decided(ids)),
    pastRevokes: () => sql.past.all(),
    mergedRevokes: () => sql.merged.all(),
    recordDecisions: (entries, merged = [], forgetMarksThrough = undefined) =>
      recordDecisions(entries, merged, forgetMarksThrough),
    forget: (through, limit) => forget(through, limit),
    forgottenRevokes: () => sql.forgotten.all(),
    updateDelivery: (delivery, update, outcome) => updateDelivery(delivery, update, outcome),
    pendingDeliveries: () => sql.pending.all(),
    pendingCount: () => (sql.pendingCount.get() as { n: number }).n,
    targetKey,
    disabledTargets: () => new Map(sql.targets.all().map(({ target, ...disabled }) => [target, disabled])),
    disableTarget: (target, time, reason, entry) => void sql.disable.run(target, time, reason, entry),
    enableTarget: (target) => void sql.enable.run(target),
    unpublishedOutcomes(limit) {
      const rows = sql.unpublished.all(publishedThrough, limit)
      const outcomes = rows.map((r) => JSON.parse(r.record) as RevokeOutcome)
      return { outcomes, through: rows.at(-1)?.rowid ?? publishedThrough }
    },
    markPublished(through) {
      publishedThrough = Math.max(publishedThrough, through)
    },
    sync: sqlite.sync,
    close() {
      writePublished()
      return sqlite.close()
    },
  }
}
