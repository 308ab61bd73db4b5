// The bin as a user meets it: help that teaches, and a bad config stopping `nerve run` with every problem
// named, exit code 1 and no stack trace.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/random-names.ts'
import { runNerve as nerve } from '../helpers/run-nerve.ts'

describe('the nerve CLI', { timeout: 90_000 }, () => {
  it('stops `nerve run` on a malformed config, naming every problem, without a stack trace', async () => {
    const file = join(tempDir(), 'bad.yaml')
    writeFileSync(
      file,
      'http: { port: "eighty" }\ncorrelation:\n  window: { before: 2 minutes }\nrevoke: { dryrun: true }\n',
    )
    // The file's port is the one checked: no NERVE_HTTP_PORT over it.
    const { code, stderr } = await nerve(['run', '--config', file], {
      NERVE_DATA_DIR: tempDir(),
      NERVE_HTTP_PORT: undefined,
    })
    expect(code).toBe(1)
    expect(stderr).toContain(`Configuration in ${file} is invalid:`)
    expect(stderr).toContain('/http/port: must be integer')
    expect(stderr).toContain('/correlation/window/before: must be a duration')
    expect(stderr).toContain('/revoke: unknown key "dryrun"')
    expect(stderr).not.toMatch(/^\s+at /m)
  })

  it('teaches with --help, and says what is wrong with an unknown command or option', async () => {
    const help = await nerve(['--help'])
    expect(help.code).toBe(0)
    for (const command of ['run', 'ingest', 'correlate', 'sink', 'replay', 'setup', 'config']) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command} `, 'm'))
    }
    expect((await nerve(['run', '--help'])).stdout).toContain('NERVE_KAFKA_BROKERS')
    const unknown = await nerve(['frobnicate'])
    expect(unknown).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('unknown command "frobnicate"'),
    })
    const badOption = await nerve(['run', '--frobnicate'])
    expect(badOption).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("Unknown option '--frobnicate'"),
    })
  })

  it('refuses a single stage without Kafka and points to `nerve run`', async () => {
    const { code, stderr } = await nerve(['correlate'], { NERVE_KAFKA_BROKERS: '' })
    expect(code).toBe(1)
    expect(stderr).toContain("use 'nerve run' for one process")
  })
})
