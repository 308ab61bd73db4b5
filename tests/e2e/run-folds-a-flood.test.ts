// `nerve run` against one pod's `cat /etc/shadow-$i` loop: 5,000 distinct "Read sensitive file untrusted"
// alerts (falcosecurity/plugins, Apache-2.0, tests/fixtures/falco), posted as Falcosidekick posts them,
// each request with a neighbour pod's alerts too. All are answered 202; the bus takes at most 100 of the
// loop's a minute, and every neighbour alert; the rest fold into summaries that a clean stop publishes
// and that, after the restart, reach /v1/correlations paired with the agent's AttachRolePolicy, their
// counts adding up to what was folded.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { NerveProcess } from '../helpers/nerve-process.ts'
import { tempDir } from '../helpers/random-names.ts'
import { attachLogFile, attachRecord } from '../helpers/shell-then-attach.ts'
import { waitFor } from '../helpers/wait-for.ts'
import { fixtureLines } from '../unit/ingest/ingest-harness.ts'
import { nerveRunsStoppedAfterEach, postWithToken, slow } from './nerve-runs.ts'

const config = `
agents:
  - id: data-cleaner
    match:
      k8s: [{ namespace: agents, pod: "data-cleaner-*" }]
      aws: ["arn:aws:iam::123456789012:role/tester"]
correlation:
  max_correlations_per_incident_rule: 1000
  rules:
    - id: reads-then-iam-write
      edge: { rules: ["Read sensitive file*"] }
      core: { actions: ["iam:*"], read_only: false }
      severity: 60
      revoke: false
`

const shadow = fixtureLines('falco/falcosecurity-plugins.ndjson').find(
  (a) => a.rule === 'Read sensitive file untrusted',
)
const start = Date.parse(attachRecord.eventTime) - 60_000

function shadowRead(pod: string, i: number): string {
  return JSON.stringify({
    ...shadow,
    time: new Date(start + i).toISOString(),
    output: `Warning Sensitive file opened for reading by non-trusted program (file=/etc/shadow-${i} command=cat /etc/shadow-${i})`,
    output_fields: {
      ...shadow.output_fields,
      'k8s.ns.name': 'agents',
      'k8s.pod.name': pod,
      'fd.name': `/etc/shadow-${i}`,
      'proc.cmdline': `cat /etc/shadow-${i}`,
    },
  })
}

async function metric(n: NerveProcess, line: RegExp): Promise<number> {
  const text = await (await fetch(`${n.url}/metrics`)).text()
  return Number(line.exec(text)?.[1] ?? 0)
}

const run = nerveRunsStoppedAfterEach()

describe('nerve run, one pod flooding distinct alerts', { timeout: 120_000 }, () => {
  it('puts at most 100 of them a minute on the bus and the rest in summaries that reach the read API', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'nerve.yaml'), config)
    const env = { NERVE_DATA_DIR: join(dir, 'data') }
    const first = await run(join(dir, 'nerve.yaml'), env)
    const minuteOf = (t: number) => Math.floor(t / 60_000)
    const began = Date.now()
    let neighbours = 0
    for (let b = 0; b < 5_000; b += 500) {
      const lines: string[] = []
      for (let i = b; i < b + 500; i++) {
        lines.push(shadowRead('data-cleaner-7f9c6d8b5-x2k4q', i))
        if (i % 50 === 0) {
          lines.push(shadowRead('billing-5d8f7c6b4-m9n2p', i))
          neighbours++
        }
      }
      const res = await postWithToken(first, '/v1/falco', lines.join('\n'))
      expect(res.status).toBe(202)
      expect(((await res.json()) as { accepted: number }).accepted).toBe(lines.length)
    }
    const minutes = minuteOf(Date.now()) - minuteOf(began) + 1
    const sent = await metric(first, /nerve_component_sent_events_total\{component="falco_receiver"\} (\d+)/)
    const folded = await metric(first, /nerve_ingest_folded_events_total (\d+)/)
    expect(sent + folded).toBe(5_000 + neighbours)
    expect(sent - neighbours).toBeLessThanOrEqual(100 * minutes)
    expect(folded).toBeGreaterThanOrEqual(5_000 - 100 * minutes)
    expect((await postWithToken(first, '/v1/cloudtrail', attachLogFile)).status).toBe(202)
    // A clean stop publishes the minute under way; the restart correlates what the stop left on the bus.
    expect(await first.stop()).toBe(0)

    const second = await run(join(dir, 'nerve.yaml'), env)
    const summaries = await waitFor(async () => {
      const res = await fetch(`${second.url}/v1/correlations?agent=data-cleaner&limit=1000`)
      const items = ((await res.json()) as { items: { edge: { source: string; output: string } }[] }).items
      const found = items.filter((c) => c.edge.source === 'nerve')
      const counted = found.reduce((n, c) => n + Number(/^Folded (\d+) alerts/.exec(c.edge.output)?.[1]), 0)
      return counted === folded ? found : undefined
    }, slow)
    expect(summaries.length).toBeGreaterThanOrEqual(1)
    expect(summaries.length).toBeLessThanOrEqual(minutes)
    expect(summaries[0]?.edge.output).toContain('of agent data-cleaner over the budget of 100 a minute')
  })
})
