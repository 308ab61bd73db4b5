// The attack: a shell alert, then a `cat /etc/shadow` loop (1,500 "Read sensitive file untrusted" alerts of
// the same pod, identical but for Falco's leading timestamp), then AttachRolePolicy. Each repeat used to
// be an entry of its own, so the loop filled the agent's side to its cap. Past the first 32 of one kind, a
// repeat identical to the newest of them folds into it: a count and a latest time, no new entry. The
// shell alert still correlates, and the side holds a handful of entries.
// Alert shapes: the real "Read sensitive file untrusted" alert in ../shared/samples/falco
// (elastic-integrations.ndjson, event-generator run --loop), with the command of a shell loop.
import { describe, expect, it } from 'vitest'
import { builtinRules } from '../../../correlate/builtin-rules.ts'
import { createCorrelator } from '../../../correlate/correlator.ts'
import type { CorrelatorState, SerializedEntry } from '../../../correlate/correlator-state.ts'
import type { CorrelatorConfig } from '../../../correlate/correlator-types.ts'
import type { Correlation, NormalizedEvent, RuleConfig } from '../../../schemas/types.ts'
import { coreEvent, edgeEvent } from './sample-events.ts'

const t0 = Date.UTC(2024, 4, 7, 18, 54, 19)

/** Falco's output starts with %evt.time, so a loop's alerts differ only there. */
const falcoTime = (ms: number) => `${new Date(ms).toISOString().replace('Z', '')}081180+0000`
const shadowRead = (id: string, time: number, file = '/etc/shadow'): NormalizedEvent =>
  edgeEvent({
    id,
    time,
    rule: 'Read sensitive file untrusted',
    priority: 'warning',
    tags: ['T1555', 'container', 'filesystem', 'host', 'maturity_stable', 'mitre_credential_access'],
    output: `${falcoTime(time)}: Warning Sensitive file opened for reading by non-trusted program (file=${file} gparent=containerd-shim ggparent=systemd gggparent=<NA> evt_type=openat user=root user_uid=0 user_loginuid=-1 process=cat proc_exepath=/usr/bin/cat parent=sh command=cat ${file} terminal=34817 container_id=5892b41bcf46 container_name=alpine)`,
  })

const builtin = (cap = 1000): CorrelatorConfig => ({
  rules: builtinRules,
  window: { before: 120_000, after: 900_000, grace: 1_200_000 },
  max_events_per_agent: cap,
  memory_budget_bytes: 1 << 28,
  incident_gap: 1_800_000,
  self_identities: [],
})

describe('repeated identical alerts collapse into one entry with a count', () => {
  it('keeps the shell alert and a handful of entries through 1,500 identical sensitive-file reads', () => {
    const c = createCorrelator(builtin())
    c.accept(edgeEvent({ id: 'shell', time: t0 }))
    for (let i = 0; i < 1500; i++) c.accept(shadowRead(`shadow-${i}`, t0 + 100 + i * 10))
    const stats = c.stats()
    expect(stats.buffered).toBe(33)
    expect(stats.collapsed).toBe(1500 - 32)
    expect(stats.overflow.agent_cap).toBe(0)
    expect(stats.floods).toBe(0)
    const { correlations } = c.accept(coreEvent({ id: 'attach', time: t0 + 60_000 }))
    expect(correlations.filter((x) => x.edge.event_id === 'shell').map((x) => x.rule.id)).toContain(
      'shell-then-iam-privilege-change',
    )
    // The folded entry pairs as its first alert, and says how many it stands for and until when.
    const keys = c.accept(coreEvent({ id: 'new-key', time: t0 + 61_000, action: 'iam:CreateAccessKey' }))
    const folded = keys.correlations.find((x) => x.edge.event_id === 'shadow-31')
    expect(folded?.rule.id).toBe('runtime-alert-then-new-credentials')
    expect(folded?.edge.time).toBe(t0 + 100 + 310)
    expect(folded?.edge.repeats).toBe(1500 - 32)
    expect(folded?.edge.last_time).toBe(t0 + 100 + 1499 * 10)
    // An unfolded entry's record has neither field: output for non-repeated input is unchanged.
    const shell = correlations.find((x) => x.edge.event_id === 'shell') as Correlation
    expect('repeats' in shell.edge || 'last_time' in shell.edge).toBe(false)
  })

  it('folds only what is identical: another file or another pod is an entry of its own', () => {
    const c = createCorrelator(builtin())
    for (let i = 0; i < 40; i++) c.accept(shadowRead(`shadow-${i}`, t0 + i))
    c.accept(shadowRead('passwd', t0 + 50, '/etc/passwd'))
    c.accept({ ...shadowRead('other-pod', t0 + 51), agent: { id: 'billing', resolved_by: 'registry' } })
    expect(c.stats().collapsed).toBe(8)
    expect(c.stats().buffered).toBe(32 + 2)
    // Alternating two files does not dodge it: each folds into the newest entry identical to it.
    c.accept(shadowRead('shadow-again', t0 + 52))
    c.accept(shadowRead('passwd-again', t0 + 53, '/etc/passwd'))
    expect(c.stats().collapsed).toBe(10)
    expect(c.stats().buffered).toBe(32 + 2)
  })

  it('keeps pairing a folded entry for the window of its latest repeat, and keeps it that long', () => {
    const rules: RuleConfig[] = [
      {
        id: 'reads-then-iam',
        edge: { rules: ['Read sensitive*'] },
        core: { actions: ['iam:*'] },
        window: { before: 60_000, after: 300_000, grace: 60_000 },
        severity: 50,
        revoke: false,
      },
    ]
    const c = createCorrelator({ ...builtin(), rules })
    // 40 reads a second apart, then one 200 s later: still within before + after of the fold target.
    for (let i = 0; i < 40; i++) c.accept(shadowRead(`shadow-${i}`, t0 + i * 1000))
    c.accept(shadowRead('shadow-late', t0 + 240_000))
    expect(c.stats().buffered).toBe(32)
    // 400 s in: outside the target's own window (and the 39 s repeat's), inside the 240 s repeat's.
    const { correlations } = c.accept(coreEvent({ id: 'attach', time: t0 + 400_000 }))
    expect(correlations.map((x) => [x.edge.event_id, x.edge.repeats])).toEqual([['shadow-31', 9]])
    // A call placed before the repeat arrived, inside only the repeat's window, pairs when the repeat folds.
    const d = createCorrelator({ ...builtin(), rules })
    for (let i = 0; i < 40; i++) d.accept(shadowRead(`shadow-${i}`, t0 + i * 1000))
    expect(d.accept(coreEvent({ id: 'attach', time: t0 + 400_000 })).correlations).toEqual([])
    const late = d.accept(shadowRead('shadow-late', t0 + 240_000))
    expect(late.correlations.map((x) => [x.edge.event_id, x.core.event_id, x.edge.repeats])).toEqual([
      ['shadow-31', 'attach', 9],
    ])
  })

  it('starts a new entry for a repeat beyond before + after of the one it would fold into', () => {
    const c = createCorrelator(builtin())
    for (let i = 0; i < 33; i++) c.accept(shadowRead(`shadow-${i}`, t0 + i))
    expect(c.stats().buffered).toBe(32)
    c.accept(shadowRead('much-later', t0 + 31 + 120_000 + 900_000 + 1))
    expect(c.stats().buffered).toBe(33)
    expect(c.stats().collapsed).toBe(1)
  })

  it('checkpoints the count: a restart mid-flood gives the same correlations', () => {
    const events: NormalizedEvent[] = [edgeEvent({ id: 'shell', time: t0 })]
    for (let i = 0; i < 300; i++) events.push(shadowRead(`shadow-${i}`, t0 + 100 + i * 997))
    events.push(coreEvent({ id: 'attach', time: t0 + 200_000 }))
    for (let i = 300; i < 400; i++) events.push(shadowRead(`shadow-${i}`, t0 + 100 + i * 997))
    events.push(coreEvent({ id: 'attach-2', time: t0 + 500_000 }))
    const whole = createCorrelator(builtin())
    const expected = events.flatMap((e) => whole.accept(e).correlations)
    for (const cut of [20, 40, 150, 302, 350]) {
      // From a full snapshot.
      const a = createCorrelator(builtin())
      const before = events.slice(0, cut).flatMap((e) => a.accept(e).correlations)
      const snapshot = JSON.parse(JSON.stringify(a.snapshot())) as CorrelatorState
      const b = createCorrelator(builtin(), snapshot)
      const after = events.slice(cut).flatMap((e) => b.accept(e).correlations)
      expect(JSON.stringify([...before, ...after])).toBe(JSON.stringify(expected))
      expect(b.stats().buffered).toBe(whole.stats().buffered)
      // From a checkpoint kept up to date with takeChanges(): folds rewrite their entry.
      const c = createCorrelator(builtin(), undefined, { trackChanges: true })
      const kept = new Map<string, SerializedEntry>()
      let meta = c.takeChanges().meta
      const incidents = new Map<string, CorrelatorState['incidents']>()
      let revoked: CorrelatorState['revoked'] = []
      for (const e of events.slice(0, cut)) {
        c.accept(e)
        const changes = c.takeChanges()
        for (const id of changes.removed) kept.delete(id)
        for (const entry of changes.added) kept.set(entry.id, entry)
        meta = changes.meta
        for (const { agent, incidents: list } of changes.incidents ?? []) incidents.set(agent, list)
        revoked = changes.revoked ?? revoked
      }
      const entries = [...kept.values()].sort((x, y) => x.seq - y.seq)
      expect(entries).toEqual(c.snapshot().entries)
      const d = createCorrelator(builtin(), {
        ...meta,
        incidents: [...incidents.values()].flat(),
        revoked,
        entries,
      })
      const rest = events.slice(cut).flatMap((e) => d.accept(e).correlations)
      expect(JSON.stringify([...before, ...rest])).toBe(JSON.stringify(expected))
    }
  })
})
