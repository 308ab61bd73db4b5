// `nerve replay` on input it can read but holds no event at all: a Kubernetes audit log given for a Falco
// one, every line rejected. A script that runs a backtest must see that as a failure: exit 1, one line
// saying nothing was replayed above the summary, and an existing --out left as it was. Before: exit 0 with
// an empty output, and each audit event reported as a CloudTrail record missing `eventTime`.
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/random-names.ts'
import { runNerve as nerve } from '../helpers/run-nerve.ts'

const fixtures = resolve(import.meta.dirname, '../fixtures/replay')
const config = join(fixtures, 'nerve.yaml')

/** A Kubernetes audit event (audit.k8s.io/v1, as the API server writes it to its log). */
const auditEvent = (n: number) =>
  JSON.stringify({
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `0b4d6e2a-5b0c-4f6e-9d7f-${String(n).padStart(12, '0')}`,
    stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/agents/pods/data-cleaner-7f9c/exec?command=sh&stdin=true',
    verb: 'create',
    user: { username: 'system:serviceaccount:agents:data-cleaner', groups: ['system:serviceaccounts'] },
    sourceIPs: ['10.0.1.23'],
    objectRef: { resource: 'pods', namespace: 'agents', name: 'data-cleaner-7f9c', subresource: 'exec' },
    responseStatus: { metadata: {}, code: 101 },
    requestReceivedTimestamp: '2026-11-25T16:00:00.000000Z',
    stageTimestamp: '2026-11-25T16:00:00.120000Z',
  })

const lines = (path: string) => readFileSync(path, 'utf8').trim().split('\n')

describe('nerve replay with nothing usable', { timeout: 120_000 }, () => {
  it('exits 1 in one line when every item is rejected, naming what an unrecognizable item is not', async () => {
    const dir = tempDir()
    const audit = join(dir, 'kube-apiserver-audit.log')
    writeFileSync(audit, `${Array.from({ length: 50 }, (_, n) => auditEvent(n)).join('\n')}\n`)
    const out = join(dir, 'pairs.ndjson')
    writeFileSync(out, '{"id":"from the last run"}\n')

    const run = await nerve(['replay', '--config', config, '--out', out, audit])
    expect(run.code).toBe(1)
    const stderr = run.stderr.trim().split('\n')
    expect(stderr[0]).toBe(
      `replay: ${audit}: item 0 rejected: / is neither a Falco alert nor a CloudTrail record, log file or` +
        ' event (it has none of their keys: priority and rule; eventTime, eventSource and eventName;' +
        ' Records; detail-type; messageType)',
    )
    expect(run.stderr).not.toContain('eventTime"')
    expect(stderr.at(-2)).toBe(
      `nerve replay: none of the 50 items read is an event (50 invalid): nothing was replayed.`,
    )
    expect(JSON.parse(stderr.at(-1) as string)).toMatchObject({ read: 50, invalid: 50, correlations: 0 })
    expect(readFileSync(out, 'utf8')).toBe('{"id":"from the last run"}\n')
  })

  it('names what a Falco alert cut short lacks, rather than calling it CloudTrail', async () => {
    const dir = tempDir()
    const [first] = lines(join(fixtures, 'falco-alerts.ndjson'))
    const { priority: _, ...noPriority } = JSON.parse(first as string)
    const cut = join(dir, 'alerts.ndjson')
    writeFileSync(cut, `${JSON.stringify(noPriority)}\n`)
    const run = await nerve(['replay', '--config', config, cut])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('item 0 rejected: / missing required key "priority"')
    expect(run.stderr).not.toContain('eventTime')
  })

  it('still exits 0 when some items are events, the rejected ones listed', async () => {
    const dir = tempDir()
    const mixed = join(dir, 'mixed.ndjson')
    writeFileSync(mixed, `${auditEvent(0)}\n${lines(join(fixtures, 'falco-alerts.ndjson')).join('\n')}\n`)
    const run = await nerve(['replay', '--config', config, mixed])
    expect(run.code).toBe(0)
    expect(run.stderr).toContain('item 0 rejected: / is neither a Falco alert nor a CloudTrail record')
    expect(JSON.parse(run.stderr.trim().split('\n').at(-1) as string)).toMatchObject({ invalid: 1 })
  })
})
