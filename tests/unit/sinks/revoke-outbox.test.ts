import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { type DecisionEntry, openRevokeOutbox, type RevokeOutbox } from '../../../sinks/revoke-outbox.ts'
import { tempDir } from '../../helpers/random-names.ts'

const opened: RevokeOutbox[] = []
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close()
})
const open = (dir: string) => {
  const outbox = openRevokeOutbox(dir)
  opened.push(outbox)
  return outbox
}

const entry = (n: number, overrides: Partial<DecisionEntry> = {}): DecisionEntry => ({
  correlation_id: `c${n}`,
  decision_id: `rvk_${n}`,
  incident_id: `inc-${n}`,
  agent_id: 'data-cleaner',
  status: 'pending',
  reason: 'policy_allowed',
  time: 1000 + n,
  body: `{"n":${n}}`,
  targets: ['https://a.example/revoke', 'https://b.example/revoke'],
  ...overrides,
})

describe('revoke outbox', () => {
  it('keeps decisions, deliveries per target and outcome records across a reopen', async () => {
    const dir = tempDir('nerve-outbox')
    const first = open(dir)
    const suppressed = entry(2, { status: 'suppressed', reason: 'below_min_score', targets: [] })
    delete suppressed.body
    expect(first.recordDecisions([entry(1), suppressed])).toHaveLength(2)
    await first.close()
    opened.pop()

    const again = open(dir)
    expect(again.decided(['c1', 'c2', 'c3'])).toEqual(new Set(['c1', 'c2']))
    expect(again.pastRevokes()).toEqual([{ incident_id: 'inc-1', agent_id: 'data-cleaner', time: 1001 }])
    expect(again.pendingDeliveries().map((d) => d.target)).toEqual([
      'https://a.example/revoke',
      'https://b.example/revoke',
    ])
    expect(again.pendingCount()).toBe(2)
    const [delivery] = again.pendingDeliveries()
    if (!delivery) throw new Error('no delivery')
    again.updateDelivery(
      delivery,
      { state: 'sent', attempts: 1, next_attempt_at: 2000 },
      { ...delivery, time: 2000, status: 'sent', reason: 'delivered', attempts: 1 },
    )
    expect(again.pendingCount()).toBe(1)
    expect(again.unpublishedOutcomes(10).outcomes.map((o) => o.id)).toEqual(['rvk_1:1', 'rvk_2:1', 'rvk_1:2'])
  })

  it('publishes each outcome once in order; after a crash only the last unwritten marks repeat', async () => {
    const dir = tempDir('nerve-outbox')
    const first = open(dir)
    first.recordDecisions([entry(1), entry(2)])
    const batch = first.unpublishedOutcomes(1)
    expect(batch.outcomes.map((o) => o.id)).toEqual(['rvk_1:1'])
    first.markPublished(batch.through)
    expect(first.unpublishedOutcomes(10).outcomes.map((o) => o.id)).toEqual(['rvk_2:1'])
    // The mark is written with the next transaction…
    first.recordDecisions([entry(3)])
    first.markPublished(first.unpublishedOutcomes(10).through)

    // …so a process that dies now (no close) republishes only what was marked after it.
    const afterCrash = open(dir)
    expect(afterCrash.unpublishedOutcomes(10).outcomes.map((o) => o.id)).toEqual(['rvk_2:1', 'rvk_3:1'])
    await afterCrash.close()
    opened.pop()
    // A clean close writes the marks.
    await first.close()
    opened.shift()
    expect(open(dir).unpublishedOutcomes(10).outcomes).toEqual([])
  })

  it('keeps the incidents merges marked revoked, at their latest revoke, across a reopen', async () => {
    const dir = tempDir('nerve-outbox')
    const first = open(dir)
    first.recordDecisions([], [{ incident_id: 'inc-b', time: 1000, rounds: 1 }])
    first.recordDecisions(
      [entry(1)],
      [
        { incident_id: 'inc-b', time: 900, rounds: 1 },
        { incident_id: 'inc-c', time: 2000, rounds: 2 },
      ],
    )
    await first.close()
    opened.pop()
    const again = open(dir)
    expect(again.mergedRevokes().sort((a, b) => a.time - b.time)).toEqual([
      { incident_id: 'inc-b', time: 1000, rounds: 1 },
      { incident_id: 'inc-c', time: 2000, rounds: 2 },
    ])
  })

  it('forgets the merge marks whose period is over when it writes new ones, and keeps the others', async () => {
    const dir = tempDir('nerve-outbox')
    const first = open(dir)
    first.recordDecisions(
      [],
      [
        { incident_id: 'inc-old', time: 1000, rounds: 1 },
        { incident_id: 'inc-edge', time: 2000, rounds: 1 },
        { incident_id: 'inc-live', time: 2001, rounds: 2 },
      ],
    )
    // Marks revoked at or before 2000 can no longer hold a revoke back: the next write drops them.
    first.recordDecisions([entry(1)], [{ incident_id: 'inc-new', time: 5000, rounds: 1 }], 2000)
    await first.close()
    opened.pop()
    expect(
      open(dir)
        .mergedRevokes()
        .map((m) => m.incident_id)
        .sort(),
    ).toEqual(['inc-live', 'inc-new'])
  })

  it('opens an outbox written before merged revokes were kept', async () => {
    const dir = tempDir('nerve-outbox')
    const first = open(dir)
    first.recordDecisions([entry(1)])
    await first.close()
    opened.pop()
    const db = new Database(join(dir, 'revoke-outbox.sqlite'))
    db.exec('DROP TABLE merged_revokes')
    db.close()
    const again = open(dir)
    expect(again.mergedRevokes()).toEqual([])
    expect(again.pastRevokes()).toEqual([{ incident_id: 'inc-1', agent_id: 'data-cleaner', time: 1001 }])
    again.recordDecisions([], [{ incident_id: 'inc-b', time: 1000, rounds: 1 }])
    expect(again.mergedRevokes()).toEqual([{ incident_id: 'inc-b', time: 1000, rounds: 1 }])
  })

  it('remembers disabled targets with the entry they were disabled under, until enabled again', () => {
    const dir = tempDir('nerve-outbox')
    open(dir).disableTarget('https://a.example/revoke', 5, 'target_gone', 'entry-1')
    expect(open(dir).disabledTargets()).toEqual(
      new Map([['https://a.example/revoke', { reason: 'target_gone', disabled_at: 5, entry: 'entry-1' }]]),
    )
    open(dir).enableTarget('https://a.example/revoke')
    expect(open(dir).disabledTargets()).toEqual(new Map())
  })

  it('keeps the targets an earlier version disabled, their entry unknown', () => {
    const dir = tempDir('nerve-outbox')
    const db = new Database(join(dir, 'revoke-outbox.sqlite'))
    db.exec(
      'CREATE TABLE targets (target TEXT PRIMARY KEY, disabled_at INTEGER NOT NULL, reason TEXT NOT NULL)',
    )
    db.prepare('INSERT INTO targets VALUES (?, ?, ?)').run('https://a.example/revoke', 5, 'target_gone')
    db.close()
    expect(open(dir).disabledTargets()).toEqual(
      new Map([['https://a.example/revoke', { reason: 'target_gone', disabled_at: 5, entry: null }]]),
    )
  })
})
