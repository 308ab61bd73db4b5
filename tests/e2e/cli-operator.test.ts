// The CLI's friction points as a new operator met them, each failing before: `nerve run` hanging on invalid
// correlation rules that `nerve config` accepted, stack traces for a port in use or a missing file, no
// --version, `nerve config` printing milliseconds that could not be pasted back, no "did you mean", no way
// to print the rule pack, dead letters only readable with sqlite3, and no word about revokes that can
// never be sent.
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { builtinRules } from '../../correlate/builtin-rules.ts'
import packageJson from '../../package.json' with { type: 'json' }
import { type NerveProcess, startNerve } from '../helpers/nerve-process.ts'
import { tempDir } from '../helpers/random-names.ts'
import { runNerve as nerve } from '../helpers/run-nerve.ts'
import { waitFor } from '../helpers/wait-for.ts'

const file = (name: string, text: string) => {
  const path = join(tempDir('nerve-cli'), name)
  writeFileSync(path, text)
  return path
}
const noStack = /^\s+at /m
const replayFixture = resolve(import.meta.dirname, '../fixtures/replay')
/** `nerve replay` with the replay fixture's config, decoding on `threads` threads. */
const replayOn = (threads: string, ...inputs: string[]) =>
  nerve(['replay', '--threads', threads, '--config', join(replayFixture, 'nerve.yaml'), ...inputs])

let running: NerveProcess | undefined
afterEach(async () => {
  await running?.stop()
  running = undefined
})

describe('start-up failures', { timeout: 90_000 }, () => {
  it('`nerve run` with invalid correlation rules exits 1 at once, and `nerve config` refuses the same file', async () => {
    const rules = file(
      'dup.yaml',
      'correlation:\n  rules:\n    - { id: shell-then-iam, severity: 80 }\n    - { id: shell-then-iam, severity: 60 }\n',
    )
    const run = await nerve(['run', '--config', rules], { NERVE_DATA_DIR: tempDir() }, 20_000)
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('duplicate rule id "shell-then-iam"')
    expect(run.stderr).not.toMatch(noStack)
    const config = await nerve(['config', '--config', rules])
    expect(config.code).toBe(1)
    expect(config.stderr).toContain('duplicate rule id "shell-then-iam"')
  })

  it('a port in use is one line and exit 1, not a stack trace', async () => {
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as { port: number }
    try {
      const run = await nerve(['run'], { NERVE_DATA_DIR: tempDir(), NERVE_HTTP_PORT: String(port) })
      expect(run.code).toBe(1)
      expect(run.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the port is already in use`)
      expect(run.stderr).not.toMatch(noStack)
    } finally {
      server.close()
    }
  })

  it('a missing replay file is one line and exit 1', async () => {
    const replay = await nerve(['replay', '/nonexistent/alerts.ndjson'])
    expect(replay.code).toBe(1)
    expect(replay.stderr.trim()).toBe('nerve replay: /nonexistent/alerts.ndjson: no such file or directory.')
  })

  it('a corrupt .gz replay input is one line naming it: exit 1 with --strict, else rejected alone and exit 3', async () => {
    const alerts = join(replayFixture, 'falco-alerts.ndjson')
    const trail = join(replayFixture, '123456789012_CloudTrail_us-west-2_20210410T1930Z_tester.json.gz')
    const truncated = file('cut.json.gz', '')
    writeFileSync(truncated, readFileSync(trail).subarray(0, 200))
    const notGzip = file('text.json.gz', '{"Records":[]}\n')
    for (const [bad, what] of [
      [truncated, 'the gzip data ends early (the file is truncated).'],
      [notGzip, 'not valid gzip data (incorrect header check).'],
    ] as const) {
      for (const threads of ['0', '2']) {
        const strict = await replayOn(threads, '--strict', alerts, bad)
        expect(strict.code).toBe(1)
        expect(strict.stderr).toBe(`nerve replay: ${bad}: ${what}\n`)
        // Without --strict the file is rejected alone, named in one line, and the alerts are replayed.
        const replay = await replayOn(threads, alerts, bad)
        expect(replay.code).toBe(3)
        expect(replay.stderr.split('\n')[0]).toBe(
          `nerve replay: ${bad}: ${what} The file is rejected: none of its records is used.`,
        )
        expect(replay.stderr).not.toMatch(noStack)
      }
    }
  })

  it("a replay input's name is shown with its control characters escaped", async () => {
    // A file (or S3 key) named to set the terminal's title and erase its screen, and not gzip.
    const crafted = file('x\u001b]0;pwned\u0007\u001b[2J.json.gz', '{"Records":[]}\n')
    const shown = crafted.replace('\u001b]0;pwned\u0007\u001b[2J', '\\x1b]0;pwned\\x07\\x1b[2J')
    for (const threads of ['0', '2']) {
      const replay = await replayOn(threads, '--strict', crafted)
      expect(replay.code).toBe(1)
      expect(replay.stderr).toBe(`nerve replay: ${shown}: not valid gzip data (incorrect header check).\n`)
      const rejected = await replayOn(threads, crafted)
      expect(rejected.stderr.split('\n')[0]).toBe(
        `nerve replay: ${shown}: not valid gzip data (incorrect header check). The file is rejected: none of its records is used.`,
      )
    }
    // A rejected item's line names its file too.
    const rejected = file('y\u001b[2J.ndjson', '{"output":"x","\\u001b[2Jkey":1}\n')
    const replay = await nerve(['replay', '--config', join(replayFixture, 'nerve.yaml'), rejected])
    const line = replay.stderr.split('\n')[0] as string
    expect(line).toMatch(/^replay: .*y\\x1b\[2J\.ndjson: item 0 rejected: /)
    expect(replay.stderr).not.toContain('\u001b')
  })

  it('prints --version', async () => {
    expect((await nerve(['--version'])).stdout).toBe(`nerve ${packageJson.version}\n`)
  })
})

describe('nerve config and nerve rules', { timeout: 90_000 }, () => {
  it('prints YAML with human durations that --config accepts again, giving the same configuration', async () => {
    const original = file(
      'nerve.yaml',
      `agents:
  - id: data-cleaner
    match: { k8s: [{ namespace: agents, pod: "data-cleaner-*" }] }
correlation:
  window: { before: 90s, after: 15m, grace: 20m }
  extra_rules:
    - id: outbound-then-iam-write
      edge: { rules: ["*outbound*"], min_priority: warning }
      core: { actions: ["iam:Attach*"], read_only: false }
      window: { before: 1m, after: 10m }
      severity: 80
      revoke: true
`,
    )
    const printed = await nerve(['config', '--config', original])
    expect(printed.code).toBe(0)
    const yaml = parse(printed.stdout)
    expect(yaml.correlation.window).toEqual({ before: '90s', after: '15m', grace: '20m' })
    expect(yaml.correlation.extra_rules[0].window).toEqual({ before: '1m', after: '10m' })
    expect(yaml.bus.retention).toBe('1d')
    const again = file('again.yaml', printed.stdout)
    const json = async (path: string) =>
      JSON.parse((await nerve(['config', '--json', '--config', path])).stdout)
    expect(await json(again)).toEqual(await json(original))
  })

  it('says "did you mean" for a mistyped key', async () => {
    const typo = file('typo.yaml', 'correlation:\n  windw: { before: 1m }\nrevoke: { min_scor: 70 }\n')
    const { code, stderr } = await nerve(['config', '--config', typo])
    expect(code).toBe(1)
    expect(stderr).toContain('/correlation: unknown key "windw" (did you mean "window"?)')
    expect(stderr).toContain('/revoke: unknown key "min_scor" (did you mean "min_score"?)')
  })

  it('`nerve rules` prints the built-in pack as YAML that --config takes as correlation.rules', async () => {
    const printed = await nerve(['rules'])
    expect(printed.code).toBe(0)
    const pack = file('pack.yaml', printed.stdout)
    const config = JSON.parse((await nerve(['config', '--json', '--config', pack])).stdout)
    expect(config.correlation.rules).toEqual(builtinRules)
  })
})

describe('nerve run telling the operator', { timeout: 90_000 }, () => {
  it('warns at start when revoke rules have no target, and `nerve dead-letters` shows rejected input', async () => {
    const dir = tempDir('nerve-ops')
    const token = 'nrv_cli-operator-0123456789abcdef'
    running = await startNerve(['run'], { NERVE_DATA_DIR: dir, NERVE_INGEST_TOKEN: token })
    expect(running.stderr()).toContain('Revoke rules have no webhook target')
    const bad =
      '{"output":"x","priority":"Loud","rule":"Terminal shell in container","time":"2021-04-10T19:27:21Z"}'
    const res = await fetch(`${running.url}/v1/falco`, {
      method: 'POST',
      body: bad,
      headers: { authorization: `Bearer ${token}` },
    })
    expect(res.status).toBe(400)
    const listed = await waitFor(
      async () => {
        const out = await nerve(['dead-letters', '--limit', '5'], { NERVE_DATA_DIR: dir })
        return out.stdout.trim() ? out : undefined
      },
      { timeoutMs: 20_000, what: 'the dead letter' },
    )
    const letter = JSON.parse(listed.stdout.trim().split('\n')[0] as string)
    expect(letter).toMatchObject({ component: 'falco_receiver', error_code: 'INPUT_INVALID', original: bad })
    expect(listed.stderr).toContain('1 of 1 dead letters')
  })
})
