// The per-agent edge budget: one pod's `cat /etc/shadow-$i` loop makes a distinct "Read sensitive file
// untrusted" alert each time (nothing downstream folds it) and filled the data dir for every sender. Per
// agent, Falco rule and minute of receive time, the first alerts go on the bus and the rest fold into one
// summary alert that says how many, when, and what the last one read. Senders are still answered 202,
// neighbours and the agent's other rules are untouched, CloudTrail is never folded, and the table behind
// it is bounded. Alerts: falcosecurity/plugins' "Read sensitive file untrusted" (Apache-2.0) and the Falco
// website's "Terminal shell in container" (CC-BY-4.0), tests/fixtures/falco, each moved into a pod.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { deadLetterTopic, eventsTopic } from '../../../bus/topics.ts'
import { createAgentBudget } from '../../../ingest/agent-budget.ts'
import { createFoldOverBudget } from '../../../ingest/fold-over-budget.ts'
import type { DecodedPublisher } from '../../../ingest/publish-decoded.ts'
import { NerveError } from '../../../runtime/errors.ts'
import type { EdgeFields, NormalizedEvent } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { attachRecord } from '../../helpers/shell-then-attach.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { auth, fixtureLines, startHarness } from './ingest-harness.ts'

type Alert = { output_fields: Record<string, unknown> } & Record<string, unknown>
const shadow = fixtureLines('falco/falcosecurity-plugins.ndjson').find(
  (a) => a.rule === 'Read sensitive file untrusted',
) as Alert
const shell = fixtureLines('falco/falco-website.ndjson').find(
  (a) => a.rule === 'Terminal shell in container',
) as Alert

const t0 = Date.parse('2026-12-07T18:00:00Z')

/** The loop's i-th alert in `pod`: another file each time, event time i ms after t0. */
function shadowRead(pod: string, i: number): Alert {
  const file = `/etc/shadow-${i}`
  return {
    ...shadow,
    output: `${shadow.output}`
      .replace('file=/etc/shadow ', `file=${file} `)
      .replace('cat /etc/shadow', `cat ${file}`),
    time: new Date(t0 + i).toISOString(),
    output_fields: {
      ...shadow.output_fields,
      'k8s.ns.name': 'agents',
      'k8s.pod.name': pod,
      'fd.name': file,
      'proc.cmdline': `cat ${file}`,
    },
  }
}

function shellIn(pod: string, i: number): Alert {
  return {
    ...shell,
    time: new Date(t0 + i).toISOString(),
    output_fields: { ...shell.output_fields, 'k8s.ns.name': 'agents', 'k8s.pod.name': pod },
  }
}

const flooder = 'data-cleaner-7f9c6d8b5-x2k4q'
const neighbour = 'billing-5d8f7c6b4-m9n2p'

async function harness(agentBudget?: number) {
  let now = t0 + 5_000
  const h = await startHarness({
    now: () => now,
    ...(agentBudget === undefined ? {} : { agentBudget }),
    http: { max_items: 10_000 },
  })
  const post = async (alerts: Alert[]) => {
    const res = await h.server.inject({
      method: 'POST',
      url: '/v1/falco',
      payload: alerts.map((a) => JSON.stringify(a)).join('\n'),
      headers: { ...auth, 'content-type': 'application/x-ndjson' },
    })
    expect(res.statusCode).toBe(202)
    return res.json() as { accepted: number; folded?: number }
  }
  const edges = () => h.bus.records(eventsTopic).map((r) => r.value)
  const ofPod = (pod: string) =>
    edges().filter((e) => e.identity.k8s_pod === pod && e.edge?.source !== 'nerve')
  const summaries = () => edges().filter((e) => e.edge?.source === 'nerve')
  return { h, post, edges, ofPod, summaries, advance: (ms: number) => (now += ms) }
}

describe('the per-agent edge budget', () => {
  it('keeps the first 100 alerts of a rule a minute and folds the loop into one summary', async () => {
    const { h, post, ofPod, summaries, advance } = await harness()
    let answered = { accepted: 0, folded: 0 }
    for (let b = 0; b < 5_000; b += 500) {
      const res = await post(Array.from({ length: 500 }, (_, j) => shadowRead(flooder, b + j)))
      answered = { accepted: answered.accepted + res.accepted, folded: answered.folded + (res.folded ?? 0) }
    }
    // Every alert was accepted (Falcosidekick never retries); 4,900 were folded, not published.
    expect(answered).toEqual({ accepted: 5_000, folded: 4_900 })
    expect(ofPod(flooder)).toHaveLength(100)
    expect(ofPod(flooder).map((e) => e.edge?.output_fields['fd.name'])).toEqual(
      Array.from({ length: 100 }, (_, i) => `/etc/shadow-${i}`),
    )
    expect(await h.rt.metricValue('nerve_ingest_folded_events_total')).toBe(4_900)
    expect(summaries()).toEqual([])

    // The next minute's first alert closes the minute: one summary of the 4,900.
    advance(60_000)
    await post([shadowRead(flooder, 5_000)])
    expect(ofPod(flooder)).toHaveLength(101)
    await expect.poll(() => summaries().length).toBe(1)
    const [summary] = summaries() as [NormalizedEvent]
    const kept = ofPod(flooder)[0] as NormalizedEvent
    expect(summary).toMatchObject({
      side: 'edge',
      agent: kept.agent,
      identity: kept.identity,
      time: t0 + 4_999,
      edge: {
        rule: 'Read sensitive file untrusted',
        priority: 'warning',
        source: 'nerve',
        tags: ['nerve', 'folded'],
        output_fields: {
          'nerve.folded_count': 4_900,
          'nerve.folded_first_time': new Date(t0 + 100).toISOString(),
          'nerve.folded_last_time': new Date(t0 + 4_999).toISOString(),
          'nerve.budget_per_minute': 100,
        },
      },
    })
    expect(summary.edge?.output).toMatch(/^Folded 4900 alerts of "Read sensitive file untrusted" of agent /)
    // The sample: the first folded alert of the highest priority folded (all warning here).
    expect(summary.edge?.output).toContain('file=/etc/shadow-100 ')
    expect(await h.rt.metricValue('nerve_ingest_fold_summaries_total')).toBe(1)
    // One warning for the minute, naming the agent and the rule (ids only).
    const warnings = h.rt.logs.filter((l) => l.level === 'warn' && /alert budget/.test(l.msg))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({
      agents: [{ agent: kept.agent.id, rule: 'Read sensitive file untrusted', folded: 4_900 }],
      count: 1,
      folded: 4_900,
    })
  })

  it("keeps a neighbour's alerts in the same request, and the agent's alert of another rule", async () => {
    const { post, ofPod } = await harness()
    const body: Alert[] = []
    for (let i = 0; i < 1_000; i++) {
      body.push(shadowRead(flooder, i))
      if (i % 10 === 0) body.push(shadowRead(neighbour, i))
    }
    body.push(shellIn(flooder, 1_000))
    expect(await post(body)).toEqual({ accepted: 1_101, folded: 900 })
    expect(ofPod(neighbour)).toHaveLength(100)
    const rules = ofPod(flooder).map((e) => e.edge?.rule)
    expect(rules.filter((r) => r === 'Terminal shell in container')).toHaveLength(1)
    expect(rules.filter((r) => r === 'Read sensitive file untrusted')).toHaveLength(100)
  })

  it('counts by receive time: event times the agent writes do not open a new minute', async () => {
    const { post, ofPod } = await harness()
    // Each alert dated an hour apart, all received in one minute.
    const spread = Array.from({ length: 300 }, (_, i) => ({
      ...shadowRead(flooder, i),
      time: new Date(t0 - i * 3_600_000).toISOString(),
    }))
    expect(await post(spread)).toMatchObject({ accepted: 300, folded: 200 })
    expect(ofPod(flooder)).toHaveLength(100)
  })

  it('never folds CloudTrail, even through the Falco door', async () => {
    const { h, post } = await harness(1)
    const calls = Array.from({ length: 20 }, (_, i) => ({ ...attachRecord, eventID: `attach-${i}` }))
    const res = await h.server.inject({
      method: 'POST',
      url: '/v1/cloudtrail',
      payload: { Records: calls },
      headers: auth,
    })
    expect(res.statusCode).toBe(202)
    // The cloudtrail plugin's alerts (as in falco-door-cloudtrail.test.ts): core events, one rule.
    const pluginCalls = Array.from({ length: 20 }, (_, i) => ({
      time: new Date(t0 + i).toISOString(),
      rule: 'Attach policy',
      priority: 'Notice',
      source: 'aws_cloudtrail',
      output: 'A policy was attached',
      output_fields: {
        'ct.id': `7b7e4636-4713-3d04-b86a-cd6774cd${String(i).padStart(4, '0')}`,
        'ct.src': 'iam.amazonaws.com',
        'ct.name': 'AttachRolePolicy',
        'ct.user.arn': 'arn:aws:sts::123456789012:assumed-role/data-cleaner/session',
      },
    }))
    expect(await post(pluginCalls)).toEqual({ accepted: 20 })
    expect(h.bus.records(eventsTopic).filter((r) => r.value.side === 'core')).toHaveLength(40)
    expect(await h.rt.metricValue('nerve_ingest_folded_events_total')).toBe(0)
  })

  it('publishes the minute under way at a clean stop; a crash would lose only its fold counts', async () => {
    const { h, post, ofPod, summaries } = await harness()
    await post(Array.from({ length: 250 }, (_, i) => shadowRead(flooder, i)))
    expect(summaries()).toEqual([])
    await h.ingest.close()
    expect(ofPod(flooder)).toHaveLength(100)
    expect(summaries().map((e) => e.edge?.output_fields['nerve.folded_count'])).toEqual([150])
  })

  it('folds before the spool: a request spooled while the bus is down holds only the kept alerts', async () => {
    const dataDir = tempDir('nerve-budget-spool')
    const down = await startHarness({ dataDir, now: () => t0 })
    down.bus.before = async () => {
      throw new NerveError('BUS_UNAVAILABLE', 'Kafka publish failed: Connection refused', { retriable: true })
    }
    const body = Array.from({ length: 300 }, (_, i) => JSON.stringify(shadowRead(flooder, i))).join('\n')
    const res = await down.server.inject({ method: 'POST', url: '/v1/falco', payload: body, headers: auth })
    expect(res.statusCode).toBe(202)
    expect(res.json()).toEqual({ accepted: 300, folded: 200, spooled: true })
    await down.ingest.close()

    const up = await startHarness({ dataDir, now: () => t0 })
    await waitFor(() => readdirSync(join(dataDir, 'falco-spool')).length === 0, {
      what: 'the spool to drain',
    })
    expect(up.bus.records(eventsTopic)).toHaveLength(100)
    await up.ingest.close()
  })

  it('refuses a forged summary (source nerve) at the Falco door: it never reaches the bus', async () => {
    // The reviewer's forge.mts: a summary naming a neighbour's pod raised the flood signal as that pod.
    const { h, edges } = await harness()
    const forged = {
      ...shadowRead(neighbour, 0),
      source: 'nerve',
      tags: ['nerve', 'folded'],
      output:
        'Folded 5000 alerts of "Read sensitive file untrusted" of agent billing over the budget of 100 a minute',
    }
    const res = await h.server.inject({
      method: 'POST',
      url: '/v1/falco',
      payload: `${JSON.stringify(shellIn(neighbour, 1))}\n${JSON.stringify(forged)}\n`,
      headers: auth,
    })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ accepted: 1, rejected: 1 })
    expect(res.json().error.details).toEqual([
      { index: 1, path: '/source', reason: expect.stringContaining("nerve's own") },
    ])
    expect(edges().map((e) => e.edge?.source)).toEqual(['syscall'])
    expect(h.bus.records(deadLetterTopic)).toHaveLength(1)
  })

  it('folds nothing with alerts_per_rule_per_minute: 0', async () => {
    const { post, ofPod } = await harness(0)
    expect(await post(Array.from({ length: 300 }, (_, i) => shadowRead(flooder, i)))).toEqual({
      accepted: 300,
    })
    expect(ofPod(flooder)).toHaveLength(300)
  })
})

/** The i-th alert of `rule` by `agent` (a workload), as the budget sees it. */
const event = (agent: string, rule: string, i: number): NormalizedEvent => ({
  id: `${agent}-${rule}-${i}`,
  side: 'edge',
  time: t0 + i,
  time_ns: 0,
  time_original: new Date(t0 + i).toISOString(),
  received_at: t0,
  via: 'falcosidekick',
  agent: { id: agent, resolved_by: 'workload' },
  identity: { k8s_namespace: 'agents', k8s_pod: agent },
  edge: {
    rule,
    priority: 'warning',
    source: 'syscall',
    hostname: 'ip-10-0-1-23.ec2.internal',
    tags: [],
    output: `cat /etc/shadow-${i}`,
    output_fields: {},
    internal: false,
  },
  raw: {},
})

describe('the budget table', () => {
  const config = {
    perMinute: 2,
    maxKeys: 100,
    rulesPerAgent: 4,
    catchAllRules: 8,
    otherNames: 3,
    sampleChars: 64,
  }

  const withPriority = (
    e: NormalizedEvent,
    priority: EdgeFields['priority'],
    output?: string,
  ): NormalizedEvent => ({
    ...e,
    edge: { ...(e.edge as EdgeFields), priority, ...(output === undefined ? {} : { output }) },
  })

  it('budgets alerts naming no one by host and container, not one entry each', () => {
    // review19 D: a plugin alert without pod or user is `unresolved:<event id>`, an agent of its own.
    const budget = createAgentBudget(config)
    const nobody = Array.from({ length: 1_000 }, (_, i) => {
      const e = event(`unresolved:${i}`, 'Read sensitive file untrusted', i)
      return { ...e, agent: { id: e.agent.id, resolved_by: 'unresolved' as const }, identity: {} }
    })
    const { kept, folded, tableFull } = budget.admit(nobody, t0)
    expect(kept).toHaveLength(2)
    expect(folded).toBe(998)
    expect(tableFull).toBe(0)
  })

  it("never folds a container's alert into another container's entry on the same host", () => {
    // review19 C: two unregistered Docker containers of one node are both `host:node-1`.
    const budget = createAgentBudget(config)
    const onHost = (container: string, i: number) => {
      const e = withPriority(event('host:node-1', 'Read sensitive file untrusted', i), 'critical')
      return {
        ...e,
        agent: { id: 'host:node-1', resolved_by: 'host' as const },
        identity: { host: 'node-1', container_id: container },
      }
    }
    const flood = Array.from({ length: 101 }, (_, i) => onHost('aaaaaaaaaaaa', i))
    expect(budget.admit(flood, t0).folded).toBe(99)
    const neighbour = onHost('bbbbbbbbbbbb', 200)
    expect(budget.admit([neighbour], t0)).toEqual({ kept: [neighbour], folded: 0, tableFull: 0 })
  })

  it("keeps the first alert of each rule past an agent's cap, and a later one that outranks it", () => {
    // review19 B: 4 junk rules spend the agent's own entries, a junk rule spends the catch-all's budget
    // with a Critical first; the real Critical of another rule must still reach the bus.
    const budget = createAgentBudget(config)
    const own = ['junk-0', 'junk-1', 'junk-2', 'junk-3'].map((rule, i) => event('data-cleaner', rule, i))
    const decoy = [
      withPriority(event('data-cleaner', 'junk-catch-all', 10), 'critical', 'cat /tmp/decoy'),
      event('data-cleaner', 'junk-catch-all', 11),
      withPriority(event('data-cleaner', 'junk-catch-all', 12), 'critical', 'cat /tmp/decoy-2'),
    ]
    const real = withPriority(
      event('data-cleaner', 'Read sensitive file untrusted', 20),
      'critical',
      'cat /etc/shadow',
    )
    const { kept } = budget.admit([...own, ...decoy, real], t0)
    expect(kept).toContain(real)
    expect(kept).not.toContain(decoy[2])
    const worse = withPriority(event('data-cleaner', 'Read sensitive file untrusted', 21), 'emergency')
    expect(
      budget.admit([event('data-cleaner', 'Read sensitive file untrusted', 22), worse], t0).kept,
    ).toEqual([worse])
    // The catch-all's counts are of folded alerts only (review19 E).
    const [summary] = budget.close(t0 + 60_000)?.summaries ?? []
    expect(summary?.edge?.output_fields).toMatchObject({
      'nerve.folded_count': 2,
      'nerve.folded_rules': { 'junk-catch-all': 1, 'Read sensitive file untrusted': 1 },
    })
  })

  it('stays bounded under many distinct agents: past the bound alerts are kept and counted, never folded', () => {
    const budget = createAgentBudget(config)
    // 100,000 distinct agents in one minute: the table holds 100 entries; the rest are kept, not folded.
    const crowd = Array.from({ length: 100_000 }, (_, i) =>
      event(`agent-${i}`, 'Read sensitive file untrusted', i),
    )
    const { kept, folded, tableFull } = budget.admit(crowd, t0)
    expect(budget.size()).toBe(100)
    expect(kept).toHaveLength(100_000)
    expect(folded).toBe(0)
    expect(tableFull).toBe(100_000 - 100)
    // An agent that has an entry still has its budget: its flood folds.
    const flood = Array.from({ length: 50 }, (_, i) => event('agent-7', 'Read sensitive file untrusted', i))
    expect(budget.admit(flood, t0)).toMatchObject({ folded: 49, tableFull: 0 })
    const closed = budget.close(t0 + 60_000)
    expect(closed?.summaries.map((s) => s.agent.id)).toEqual(['agent-7'])
    expect(budget.size()).toBe(0)
  })

  it("never folds a neighbour's alert into an entry the flooder filled the table with", () => {
    // The reviewer's blind.mts: 10,000 distinct rule names of one agent, then an innocent pod's Critical.
    const budget = createAgentBudget({ ...config, perMinute: 100, maxKeys: 10_000, rulesPerAgent: 64 })
    const junk = Array.from({ length: 30_000 }, (_, i) => event('data-cleaner', `junk-${i}`, i))
    const flooded = budget.admit(junk, t0)
    // 64 rules of its own plus its catch-all, each with the budget of 100: the rest folded.
    expect(budget.size()).toBe(65)
    expect(flooded.kept).toHaveLength(64 + 100)
    const innocent = {
      ...event('billing', 'Read sensitive file untrusted', 1),
      edge: {
        ...(event('billing', 'Read sensitive file untrusted', 1).edge as EdgeFields),
        priority: 'critical' as const,
      },
    }
    expect(budget.admit([innocent], t0)).toEqual({ kept: [innocent], folded: 0, tableFull: 0 })
    const closed = budget.close(t0 + 60_000)
    expect(closed?.keys).toEqual([{ agent: 'data-cleaner', rule: 'other rules', folded: 30_000 - 164 }])
    const [summary] = closed?.summaries ?? []
    expect(summary?.agent.id).toBe('data-cleaner')
    // Past the cap, the catch-all keeps the first alert of its first 8 rule names, then its budget of 100:
    // every later rule past its names folds, counted as such.
    expect(summary?.edge?.output_fields).toMatchObject({
      'nerve.folded_count': 30_000 - 164,
      'nerve.folded_other_rules': 0,
      'nerve.folded_unnamed_alerts': 30_000 - 164,
    })
    expect(summary?.edge?.output).toMatch(
      /^Folded 29836 alerts of other rules \(past its cap of 64 rules a minute; alerts folded: 29836 alerts of rules past its 8 names\) of agent data-cleaner /,
    )
  })

  it('keeps an alert of a higher priority than any kept yet, and the summary carries the highest folded', () => {
    // The reviewer's hide.mts: 100 Notice reads, the real Critical, then Notices.
    const budget = createAgentBudget({ ...config, perMinute: 100 })
    const at = (priority: EdgeFields['priority'], i: number, output: string): NormalizedEvent => {
      const e = event('data-cleaner', 'Read sensitive file untrusted', i)
      return { ...e, edge: { ...(e.edge as EdgeFields), priority, output } }
    }
    const reads = Array.from({ length: 100 }, (_, i) => at('notice', i, `cat /tmp/cache-${i}`))
    const shadowRead = at('critical', 100, 'cat /etc/shadow')
    const { kept } = budget.admit(
      [
        ...reads,
        shadowRead,
        at('notice', 101, 'cat /tmp/cache-last'),
        at('critical', 102, 'cat /etc/gshadow'),
        at('notice', 103, 'cat /tmp/x'),
      ],
      t0,
    )
    expect(kept).toContain(shadowRead)
    expect(kept).toHaveLength(101)
    const [summary] = budget.close(t0 + 60_000)?.summaries ?? []
    expect(summary?.edge?.priority).toBe('critical')
    expect(summary?.edge?.output_fields).toMatchObject({
      'nerve.folded_count': 3,
      'nerve.folded_top_priority': 'critical',
      'nerve.folded_top_time': new Date(t0 + 102).toISOString(),
      'nerve.folded_first_time': new Date(t0 + 101).toISOString(),
      'nerve.folded_last_time': new Date(t0 + 103).toISOString(),
    })
    expect(summary?.edge?.output).toContain('cat /etc/gshadow')
  })

  it('budgets alerts named "Test rule" or sent as source internal like any rule', () => {
    // The reviewer's bypass.mts: Falco's own messages skipped the budget, so an agent named its loop so.
    const budget = createAgentBudget({ ...config, perMinute: 100 })
    const internal = (i: number): NormalizedEvent => {
      const e = event('data-cleaner', i % 2 ? 'Test rule' : 'Falco internal: syscall event drop', i)
      return { ...e, edge: { ...(e.edge as EdgeFields), source: 'internal', internal: true } }
    }
    const { kept, folded } = budget.admit(
      Array.from({ length: 20_000 }, (_, i) => internal(i)),
      t0,
    )
    expect(kept).toHaveLength(200)
    expect(folded).toBe(19_800)
  })
})

describe('a full budget table', () => {
  it('keeps the alerts that find it full, counts them and warns at most once a minute', async () => {
    const rt = createTestRuntime({ level: 'info' })
    let now = t0
    const fold = createFoldOverBudget(
      { perMinute: 1, maxKeys: 10, rulesPerAgent: 4, catchAllRules: 8, otherNames: 3, sampleChars: 64 },
      {
        publisher: { publish: async () => {} } as unknown as DecodedPublisher,
        log: rt.log,
        metrics: rt.metrics,
        now: () => now,
      },
    )
    // 30 identities of a forged crowd, 2 alerts each: the first 10 take the table.
    const crowd = (n: number) =>
      Array.from({ length: n }, (_, i) => [
        shadowEvent(`agent-${i}`, 2 * i),
        shadowEvent(`agent-${i}`, 2 * i + 1),
      ]).flat()
    const decoded = (events: NormalizedEvent[]) => ({ events, invalid: [], skipped: {}, internal: 0 })
    const first = fold.admit(decoded(crowd(30)))
    expect(first.folded).toBe(10)
    expect(first.decoded.events).toHaveLength(60 - 10)
    fold.admit(decoded(crowd(30)))
    expect(await rt.metricValue('nerve_ingest_fold_table_full_total')).toBe(80)
    const full = () => rt.logs.filter((l) => l.level === 'warn' && /table is full/.test(l.msg))
    expect(full()).toHaveLength(1)
    now += 60_000
    fold.admit(decoded(crowd(30)))
    expect(full()).toHaveLength(2)
    await fold.close()
  })
})

/** The i-th shadow read of `agent`, as the budget sees it. */
const shadowEvent = (agent: string, i: number) => event(agent, 'Read sensitive file untrusted', i)
