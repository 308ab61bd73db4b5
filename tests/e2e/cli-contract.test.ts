// What README.md and docs/ promise of every command, as the contract audit of 0af82b4 checked it from
// outside: usage errors exit 2 with the usage, failures exit 1 in one line (`nerve <command>: …`), a config
// `nerve config` accepts is one `nerve run` starts with (and one it refuses stops `run` before it opens
// anything), `replay --out` to a path it cannot write, and `dead-letters` on a mistyped data dir.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { tempDir } from '../helpers/random-names.ts'
import { runNerve as nerve } from '../helpers/run-nerve.ts'

const fixtures = resolve(import.meta.dirname, '../fixtures/replay')
const inputs = [join(fixtures, 'falco-alerts.ndjson'), fixtures]
const noStack = /^\s+at /m
const replayConfig = ['--config', join(fixtures, 'nerve.yaml')]

const writeConfig = (yaml: string): string => {
  const file = join(tempDir(), 'nerve.yaml')
  writeFileSync(file, yaml)
  return file
}

describe('the nerve CLI contract', { timeout: 120_000 }, () => {
  it('exits 2 on a usage error, with the usage and one prefix, and 1 on a failure', async () => {
    for (const args of [
      ['replay'],
      ['replay', '--order', 'foo', ...inputs],
      ['setup', 'foo'],
      ['rules', '-x'],
    ]) {
      const run = await nerve(args)
      expect(run.code, args.join(' ')).toBe(2)
      expect(run.stderr).toMatch(new RegExp(`^nerve ${args[0]}: `))
      expect(run.stderr).toContain(`Usage: nerve ${args[0]}`)
      expect(run.stderr).not.toContain('nerve: nerve')
    }
    const missing = await nerve(['replay', '/nonexistent/alerts.ndjson'])
    expect(missing).toMatchObject({ code: 1, stderr: expect.stringMatching(/^nerve replay: /) })
    expect(missing.stderr).not.toContain('Usage:')
  })

  it('stops `nerve run` on a webhook secret `nerve config` refuses too, before it opens anything', async () => {
    const file = writeConfig(
      'revoke:\n  webhooks: [{ url: "https://hooks.example/revoke", secret: "whsec_..." }]\n',
    )
    const dataDir = join(tempDir(), 'data')
    for (const command of ['config', 'run']) {
      const run = await nerve([command, '--config', file], { NERVE_DATA_DIR: dataDir })
      expect(run.code, command).toBe(1)
      expect(run.stderr).toContain(`nerve ${command}: Configuration in ${file} is invalid:`)
      expect(run.stderr).toContain('/revoke/webhooks/0/secret: must be whsec_ followed by base64')
      expect(run.stderr).not.toMatch(noStack)
    }
    expect(existsSync(dataDir)).toBe(false)
  })

  it('lists the rules a config enables with `nerve rules --config`', async () => {
    const file = writeConfig(`
correlation:
  rules:
    - { id: shell-then-iam, edge: { rules: ["Terminal shell*"] }, core: { actions: ["iam:*"] }, severity: 80 }
  extra_rules:
    - { id: any-then-s3-delete, edge: {}, core: { actions: ["s3:Delete*"] }, severity: 60 }
`)
    const run = await nerve(['rules', '--config', file])
    expect(run.code).toBe(0)
    expect(run.stdout).toContain(`the 2 rules ${file} enables`)
    const rules = parse(run.stdout).correlation.rules as { id: string }[]
    expect(rules.map((r) => r.id)).toEqual(['shell-then-iam', 'any-then-s3-delete'])
  })

  it('says in one line that `replay --out` cannot be written, before it reads any input', async () => {
    const dir = tempDir()
    for (const [out, why] of [
      [join(dir, 'no/such/dir/pairs.ndjson'), 'no such file or directory'],
      [dir, 'is a directory'],
      ['/dev/full', 'no space left'],
    ] as const) {
      const run = await nerve(['replay', '--out', out, ...inputs])
      expect(run.code, out).toBe(1)
      expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(`^nerve replay: ${out}.*${why}`)])
    }
  })

  // `nerve replay emptydir` said "nerve replay: nerve replay: …", and `nerve setup` alone 'not ""'.
  it('says each failure once, prefixed once: an empty directory to replay, setup without a target', async () => {
    const empty = tempDir()
    const replay = await nerve(['replay', empty])
    expect(replay.code).toBe(1)
    expect(replay.stderr.trim()).toBe(`nerve replay: ${JSON.stringify(empty)} names no file to read.`)
    const setup = await nerve(['setup'])
    expect(setup.code).toBe(2)
    expect(setup.stderr.split('\n')[0]).toBe(
      'nerve setup: needs what to set up: "elasticsearch" or "kibana".',
    )
  })

  it('leaves an existing `replay --out` as it was when the replay fails, and never writes over an input', async () => {
    const dir = tempDir()
    const kept = join(dir, 'pairs.ndjson')
    writeFileSync(kept, '{"id":"from the last run"}\n')
    const missing = await nerve(['replay', '--out', kept, '/nonexistent/alerts.ndjson'])
    expect(missing.code).toBe(1)
    expect(readFileSync(kept, 'utf8')).toBe('{"id":"from the last run"}\n')

    const input = join(dir, 'alerts.ndjson')
    writeFileSync(input, readFileSync(inputs[0] as string))
    const over = await nerve(['replay', '--out', input, input])
    expect(over.code).toBe(1)
    expect(over.stderr.trim()).toBe(`nerve replay: ${input}: is also an input; --out would overwrite it.`)
    expect(readFileSync(input)).toEqual(readFileSync(inputs[0] as string))

    const done = await nerve(['replay', '--config', join(fixtures, 'nerve.yaml'), '--out', kept, ...inputs])
    expect(done.code).toBe(0)
    expect(readFileSync(kept, 'utf8').trim().split('\n')).toHaveLength(10)
    expect(readdirSync(dir).sort()).toEqual(['alerts.ndjson', 'pairs.ndjson'])
  })

  it('refuses --since after --until as a usage error, not "the input holds no item"', async () => {
    const window = ['--since', '2026-11-05', '--until', '2026-11-01']
    const inverted = await nerve(['replay', ...replayConfig, ...window, ...inputs])
    expect(inverted.code).toBe(2)
    expect(inverted.stderr.split('\n')[0]).toBe(
      'nerve replay: --since 2026-11-05 is not before --until 2026-11-01: no file can be in [since, until).',
    )
  })

  it('refuses --threads with --order input, which decodes on the main thread, instead of ignoring it', async () => {
    const threads = await nerve(['replay', ...replayConfig, '--threads', '2', '--order', 'input', ...inputs])
    expect(threads.code).toBe(2)
    expect(threads.stderr.split('\n')[0]).toBe(
      'nerve replay: --threads is for --order time: --order input decodes on the main thread, in argument order.',
    )
    const none = await nerve(['replay', ...replayConfig, '--threads', '0', '--order', 'input', ...inputs])
    expect(none.code).toBe(0)
  })

  it('names --spill-dir and says its directory does not exist, before reading any input', async () => {
    const dir = tempDir()
    const spill = join(dir, 'spill')
    const missing = await nerve(['replay', ...replayConfig, '--spill-dir', spill, ...inputs])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toBe(`nerve replay: --spill-dir ${spill}: the directory does not exist.\n`)
    const file = join(dir, 'a-file')
    writeFileSync(file, '')
    const notDir = await nerve(['replay', ...replayConfig, '--spill-dir', file, ...inputs])
    expect(notDir.code).toBe(1)
    expect(notDir.stderr).toBe(`nerve replay: --spill-dir ${file}: not a directory.\n`)
  })

  it('says there is no nerve data at a mistyped data dir, and creates nothing there', async () => {
    const dir = join(tempDir(), 'mistyped')
    const run = await nerve(['dead-letters'], { NERVE_DATA_DIR: dir })
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(new RegExp(`^nerve dead-letters: no nerve data at ${dir}`))
    expect(existsSync(dir)).toBe(false)
    const limit = await nerve(['dead-letters', '-n', '5000'], { NERVE_DATA_DIR: dir })
    expect(limit.code).toBe(2)
    expect(limit.stderr).toContain('--limit: must be an integer from 1 to 1000')
  })
})
