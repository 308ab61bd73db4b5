// `nerve replay` is deterministic: the same files give the same bytes, in both orders, run after run.
// The golden files were produced by the command below and reviewed; a change in them is a change in
// what users get from a backtest, so regenerate them on purpose only:
//   cd tests/fixtures/replay && nerve replay --config nerve.yaml falco-alerts.ndjson \
//     123456789012_CloudTrail_us-west-2_20210410T1930Z_tester.json.gz > ../golden/agent-session.time-order.ndjson
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/random-names.ts'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '../..')
const inputs = join(root, 'tests/fixtures/replay')
const golden = (name: string) => readFileSync(join(root, 'tests/fixtures/golden', name), 'utf8')
const trail = '123456789012_CloudTrail_us-west-2_20210410T1930Z_tester.json.gz'

async function replay(args: string[]) {
  const { stdout, stderr } = await run(process.execPath, [join(root, 'bin/nerve.mjs'), 'replay', ...args], {
    cwd: inputs,
    maxBuffer: 64 << 20,
  })
  return { stdout, summary: JSON.parse(stderr.trim().split('\n').at(-1) as string) }
}

describe('nerve replay (golden)', { timeout: 90_000 }, () => {
  it('writes the golden correlations in event-time order, the same bytes every run', async () => {
    const args = ['--config', 'nerve.yaml', 'falco-alerts.ndjson', trail]
    const [a, b] = await Promise.all([replay(args), replay(args)])
    expect(a.stdout).toBe(golden('agent-session.time-order.ndjson'))
    expect(b.stdout).toBe(a.stdout)
    expect(a.summary).toMatchObject({
      read: 29,
      invalid: 0,
      future: 0,
      skipped: 0,
      duplicate: 0,
      late: 0,
      correlations: 10,
      overflow: 0,
      ignored: {
        no_agent: 0,
        invalid_time: 0,
        internal: 1,
        no_rule: 7,
        self_action: 0,
        revoke_action: 0,
        revoke_confirmation: 0,
      },
      confirmations: 0,
      revokes: 1,
      suppressed: {
        rule_not_revoking: 2,
        below_min_score: 0,
        protected_agent: 0,
        incident_already_revoked: 7,
        rate_limited_agent: 0,
        rate_limited_global: 0,
        rate_limited_global_fallback: 0,
        no_targets: 0,
      },
    })
    expect(a.summary.elapsed_ms).toBeGreaterThanOrEqual(0)
    expect(a.summary.peak_rss_mib).toBeGreaterThan(0)
  })

  it('reproduces a live arrival sequence with --order input: alerts that arrive after their window are late', async () => {
    const out = join(tempDir(), 'pairs.ndjson')
    const { stdout, summary } = await replay([
      '--order',
      'input',
      '--config',
      'nerve.yaml',
      trail,
      'falco-alerts.ndjson',
      '--out',
      out,
    ])
    expect(stdout).toBe('')
    expect(readFileSync(out, 'utf8')).toBe(golden('agent-session.input-order.ndjson'))
    expect(summary).toMatchObject({ read: 29, late: 1, correlations: 10 })
  })

  it('hints at the registry when nothing joins without one, the summary still the last line', async () => {
    const { stdout, stderr } = await run(
      process.execPath,
      [join(root, 'bin/nerve.mjs'), 'replay', 'falco-alerts.ndjson', trail],
      { cwd: inputs },
    )
    expect(stdout).toBe('')
    const lines = stderr.trim().split('\n')
    expect(lines.some((l) => l.startsWith('hint: no correlation, and no agent registry'))).toBe(true)
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({ read: 29, correlations: 0 })
  })

  it('says what is wrong with its arguments', async () => {
    await expect(replay(['--order', 'random', 'falco-alerts.ndjson'])).rejects.toMatchObject({
      stderr: expect.stringContaining('--order must be "time" or "input"'),
    })
    await expect(replay([])).rejects.toMatchObject({ stderr: expect.stringContaining('at least one FILE') })
  })
})
