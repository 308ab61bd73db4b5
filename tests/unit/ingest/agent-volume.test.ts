// One agent's flood of distinct alerts (a `cat /etc/shadow-$i` loop: nothing folds) fills the data dir for
// every sender, and nothing bounds one agent's share of the bus. The operator sees who: the busiest agent's
// share of the last minute's published events (a gauge, no agent ids as labels) and a warning naming it.
// Alerts: the Falco website's "Terminal shell in container" alert (CC-BY-4.0, tests/fixtures/falco),
// posted as Falcosidekick posts them, the flood's each for another file.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { eventsTopic } from '../../../bus/topics.ts'
import { createAgentVolume, defaultAgentVolume, rootOf } from '../../../ingest/agent-volume.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { auth, fixtures, startHarness } from './ingest-harness.ts'

const shell = JSON.parse(
  readFileSync(join(fixtures, 'falco/falco-website.ndjson'), 'utf8').trim().split('\n')[9] as string,
) as { output_fields: Record<string, unknown> } & Record<string, unknown>

const t0 = Date.parse('2026-12-07T18:00:00Z')

function alert(pod: string, i: number, rule = 'Terminal shell in container') {
  const file = `/etc/shadow-${i}`
  return {
    ...shell,
    rule,
    priority: rule === 'Terminal shell in container' ? 'Notice' : 'Warning',
    output: `${rule}: cat ${file} (k8s.ns=agents k8s.pod=${pod})`,
    time: new Date(t0 - 60_000 + i).toISOString(),
    output_fields: {
      ...shell.output_fields,
      'k8s.ns.name': 'agents',
      'k8s.pod.name': pod,
      'fd.name': file,
      'proc.cmdline': `cat ${file}`,
    },
  }
}

async function flood(pod: string, count: number, post: (body: unknown[]) => Promise<void>) {
  for (let b = 0; b < count; b += 100) {
    const batch = Array.from({ length: Math.min(100, count - b) }, (_, j) =>
      alert(pod, b + j, 'Read sensitive file untrusted'),
    )
    await post(batch)
  }
}

async function harness() {
  let now = t0
  // The busiest agent is measured on what reaches the bus: with the edge budget off, the whole flood does
  // (agent-budget.test.ts folds it).
  const h = await startHarness({ now: () => now, agentBudget: 0 })
  const post = async (body: unknown[]) => {
    const res = await h.server.inject({ method: 'POST', url: '/v1/falco', payload: body, headers: auth })
    expect(res.statusCode).toBe(202)
  }
  const agentOf = (pod: string) =>
    h.bus.records(eventsTopic).find((r) => r.value.identity.k8s_pod === pod)?.value.agent.id
  return { h, post, agentOf, advance: (ms: number) => (now += ms) }
}

describe('the busiest agent on the bus', () => {
  it('names an agent that put most of a minute of events on the bus, and gives its share', async () => {
    const { h, post, agentOf, advance } = await harness()
    await flood('flooder-6b7d9c5f4-q8t2m', 2_000, post)
    for (const pod of ['billing-7f9c6d8b5-x2k4q', 'reports-5d8f7c6b4-m9n2p', 'etl-6c7d8e9f0-a1b2c'])
      await post([alert(pod, 0)])
    advance(60_000)
    await post([alert('billing-7f9c6d8b5-x2k4q', 1)])

    expect(await h.rt.metricValue('nerve_ingest_busiest_agent_events')).toBe(2_000)
    expect(await h.rt.metricValue('nerve_ingest_busiest_agent_share')).toBeCloseTo(2_000 / 2_003, 6)
    const warnings = h.rt.logs.filter((l) => l.level === 'warn' && /most of the events/.test(l.msg))
    expect(warnings).toHaveLength(1)
    const flooder = agentOf('flooder-6b7d9c5f4-q8t2m')
    expect(warnings[0]).toMatchObject({ events: 2_003, window_s: 60 })
    const named = (warnings[0]?.agents ?? []) as { agent: string; events: number }[]
    expect(named[0]).toEqual({ agent: flooder, events: 2_000 })
    expect(named.map((a) => a.events)).toEqual([2_000, 1, 1, 1])
  })

  it('names no agent when none sent most of a busy minute, but the namespace they all run in', async () => {
    const { h, post, advance } = await harness()
    await flood('billing-7f9c6d8b5-x2k4q', 500, post)
    await flood('reports-5d8f7c6b4-m9n2p', 500, post)
    await flood('etl-6c7d8e9f0-a1b2c', 400, post)
    advance(60_000)
    await post([alert('etl-6c7d8e9f0-a1b2c', 0)])
    expect(await h.rt.metricValue('nerve_ingest_busiest_agent_share')).toBeCloseTo(500 / 1_400, 6)
    expect(await h.rt.metricValue('nerve_ingest_busiest_agent_root_share')).toBe(1)
    const warnings = h.rt.logs.filter((l) => /most of the events/.test(l.msg))
    // Three unregistered workloads of one namespace: the namespace is named, no one agent is.
    expect(warnings).toHaveLength(1)
    expect(warnings[0]?.msg).toMatch(/^One namespace, role or host/)
    expect(warnings[0]?.roots).toEqual([{ root: 'namespace:agents', events: 1_400 }])
  })

  it('reads 0 once a whole minute passed with nothing published', async () => {
    const { h, post, advance } = await harness()
    await flood('flooder-6b7d9c5f4-q8t2m', 200, post)
    advance(60_000)
    expect(await h.rt.metricValue('nerve_ingest_busiest_agent_events')).toBe(200)
    advance(60_000)
    expect(await h.rt.metricValue('nerve_ingest_busiest_agent_events')).toBe(0)
    expect(await h.rt.metricValue('nerve_ingest_busiest_agent_share')).toBe(0)
  })
})

describe('the busiest agent among many', () => {
  // The counter is bounded, so counts of a minute with more agents than counters may read low, by at most
  // the window's events over (counters + 1): the warning says by how much (count_error).
  const bound = (events: number) => Math.floor(events / (defaultAgentVolume.counters + 1))

  /** A volume counter, and the shell alert's normalized event as published for any agent. */
  async function counter() {
    const { h, post } = await harness()
    await post([alert('billing-7f9c6d8b5-x2k4q', 0)])
    const event = h.bus.records(eventsTopic)[0]?.value as NormalizedEvent
    let now = t0
    const rt = createTestRuntime({ level: 'info' })
    const volume = createAgentVolume(defaultAgentVolume, { now: () => now, log: rt.log, metrics: rt.metrics })
    const as = (agent: string) => ({ ...event, agent: { ...event.agent, id: agent } })
    return { rt, volume, as, advance: (ms: number) => (now += ms) }
  }

  it.each([
    { order: 'after', when: 'after 10,000 one-event agents' },
    { order: 'amid', when: 'amid 10,000 one-event agents' },
  ])("names a flooder that sent 75 % of a minute's events $when", async ({ order }) => {
    const { rt, volume, as, advance } = await counter()
    const fleet = Array.from({ length: 10_000 }, (_, i) => as(`team${i}/app`))
    const flooder = as('agents/data-cleaner')
    if (order === 'after') {
      volume.note(fleet)
      for (let b = 0; b < 300; b++) volume.note(Array.from({ length: 100 }, () => flooder))
    } else {
      for (const member of fleet) volume.note([member, flooder, flooder, flooder])
    }
    advance(60_000)
    volume.note([as('team0/app')])

    const events = 40_000
    const warnings = rt.logs.filter((l) => l.level === 'warn' && /most of the events/.test(l.msg))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({ events, window_s: 60 })
    const error = warnings[0]?.count_error as number
    expect(error).toBeLessThanOrEqual(bound(events))
    const [named] = (warnings[0]?.agents ?? []) as { agent: string; events: number }[]
    expect(named?.agent).toBe('agents/data-cleaner')
    expect(named?.events).toBeLessThanOrEqual(30_000)
    expect(named?.events).toBeGreaterThanOrEqual(30_000 - error)
    const counted = await rt.metricValue('nerve_ingest_busiest_agent_events')
    expect(counted).toBe(named?.events)
    expect(await rt.metricValue('nerve_ingest_busiest_agent_share')).toBeCloseTo(counted / events, 6)
  })

  it("names the namespace of a flood split over new pod names, which no one id's share shows", async () => {
    // 20 agents of other namespaces send 100 events each; the flood's 20,000 come from 2 or 3 pods that
    // no ReplicaSet suffix ties together, each its own workload id, none of them half the minute.
    for (const split of [2, 3]) {
      const { rt, volume, as, advance } = await counter()
      for (let i = 0; i < 20_000; i++) volume.note([as(`agents/flood-${i % split}`)])
      for (let a = 0; a < 20; a++) volume.note(Array.from({ length: 100 }, () => as(`team${a}/app`)))
      advance(60_000)
      volume.note([as('team0/app')])
      expect(await rt.metricValue('nerve_ingest_busiest_agent_share')).toBeCloseTo(
        Math.ceil(20_000 / split) / 22_000,
        6,
      )
      expect(await rt.metricValue('nerve_ingest_busiest_agent_root_share')).toBeCloseTo(20_000 / 22_000, 6)
      const warnings = rt.logs.filter((l) => l.level === 'warn' && /most of the events/.test(l.msg))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatchObject({ events: 22_000, count_error: 0 })
      expect((warnings[0]?.roots as unknown[] | undefined)?.[0]).toEqual({
        root: 'namespace:agents',
        events: 20_000,
      })
    }
  })

  it('counts every id a fallback can make up under its root', () => {
    const who = (id: string, resolved_by: NormalizedEvent['agent']['resolved_by'], identity = {}) =>
      rootOf({ id, resolved_by }, identity)
    expect(who('agents/flood-1', 'workload')).toBe('namespace:agents')
    expect(who('eks-prod/agents/flood-1', 'workload')).toBe('namespace:eks-prod/agents')
    expect(who('unregistered:agents/data-cleaner', 'workload')).toBe('namespace:unregistered:agents')
    expect(who('agents/flood-1', 'stitched', { k8s_namespace: 'agents' })).toBe('namespace:agents')
    expect(who('arn:aws:iam::123456789012:role/data-cleaner', 'principal')).toBe(
      'arn:aws:iam::123456789012:role/data-cleaner',
    )
    expect(who('arn:aws:sts::123456789012:assumed-role/data-cleaner/sess-9', 'principal')).toBe(
      'arn:aws:sts::123456789012:assumed-role/data-cleaner',
    )
    expect(who('arn:aws:sts::123456789012:federated-user/anyone', 'principal')).toBe(
      'arn:aws:sts::123456789012:federated-user',
    )
    expect(who('host:ip-10-0-1-23.ec2.internal', 'host')).toBe('host:ip-10-0-1-23.ec2.internal')
    expect(who('unresolved:5a5a', 'unresolved')).toBe('unresolved')
    expect(who('unresolved:5a5b', 'unresolved')).toBe('unresolved')
    // A registered agent is its own root, whatever its id looks like.
    expect(who('agents/data-cleaner', 'registry')).toBe('agents/data-cleaner')
  })
})
