// `nerve replay` leaves the per-agent edge budget (ingest.agent_budget) off: the budget counts by nerve's
// receive minute, which a replay does not have, and a backtest must see every alert it is given. A pod's
// `cat /etc/shadow-$i` loop of 300 alerts (falcosecurity/plugins' "Read sensitive file untrusted",
// Apache-2.0, moved into pod default/alpine) and the role's AttachRolePolicy (shell-then-attach.ts) make
// a correlation per alert, with the budget at 100 a minute, the same bytes on every run.
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/random-names.ts'
import { attachRecord } from '../helpers/shell-then-attach.ts'
import { fixtureLines } from '../unit/ingest/ingest-harness.ts'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '../..')

const config = `
ingest:
  agent_budget: { alerts_per_rule_per_minute: 100 }
agents:
  - id: alpine-debugger
    match:
      k8s: [{ namespace: default, pod: alpine }]
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

describe('nerve replay and the edge budget', { timeout: 60_000 }, () => {
  it('folds nothing: every alert of a flood is replayed, the same bytes each time', async () => {
    const shadow = fixtureLines('falco/falcosecurity-plugins.ndjson').find(
      (a) => a.rule === 'Read sensitive file untrusted',
    )
    const start = Date.parse(attachRecord.eventTime) - 60_000
    const alerts = Array.from({ length: 300 }, (_, i) =>
      JSON.stringify({
        ...shadow,
        time: new Date(start + i).toISOString(),
        output: `Warning Sensitive file opened for reading by non-trusted program (file=/etc/shadow-${i})`,
        output_fields: {
          ...shadow.output_fields,
          'k8s.ns.name': 'default',
          'k8s.pod.name': 'alpine',
          'fd.name': `/etc/shadow-${i}`,
        },
      }),
    )
    const dir = tempDir()
    writeFileSync(join(dir, 'nerve.yaml'), config)
    writeFileSync(join(dir, 'input.ndjson'), [...alerts, JSON.stringify(attachRecord)].join('\n'))
    const replay = () =>
      run(process.execPath, [
        join(root, 'bin/nerve.mjs'),
        'replay',
        '--config',
        join(dir, 'nerve.yaml'),
        join(dir, 'input.ndjson'),
      ])
    const first = await replay()
    const lines = first.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines).toHaveLength(300)
    expect(new Set(lines.map((c) => c.edge.event_id)).size).toBe(300)
    expect(lines.every((c) => c.edge.source !== 'nerve')).toBe(true)
    expect((await replay()).stdout).toBe(first.stdout)
  })
})
