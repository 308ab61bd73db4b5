// `nerve replay --order time` writes into a private temp dir of its own (--spill-dir): sorted runs of the
// replayed records and, with --threads, the decoding threads' bundle. Interrupted (Ctrl-C, a kill), it
// must not leave that dir behind: the process ends as the signal asks, without its finally blocks.
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { writeHourlyTrail } from '../helpers/hourly-trail-files.ts'
import { tempDir } from '../helpers/random-names.ts'

const root = resolve(import.meta.dirname, '../..')
const config = join(root, 'tests/fixtures/replay/nerve.yaml')

describe('nerve replay interrupted', { timeout: 120_000 }, () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`removes its spill dir (runs, decoding threads' bundle) on ${signal}`, async () => {
      const dir = tempDir()
      const spill = tempDir()
      try {
        const files = writeHourlyTrail(dir, { hours: 300, recordsPerFile: 400 })
        const child = spawn(
          process.execPath,
          [join(root, 'bin/nerve.mjs'), 'replay', '--config', config, '--memory-budget', '1M'].concat([
            '--threads',
            '2',
            '--spill-dir',
            spill,
            ...files,
          ]),
          { stdio: 'ignore' },
        )
        const exited = new Promise<NodeJS.Signals | null>((done) => child.on('exit', (_, s) => done(s)))
        // Interrupted once the bundle is there, while the threads decode.
        const bundled = () =>
          readdirSync(spill).some((d) => existsSync(join(spill, d, 'decode-worker/entry.mjs')))
        while (!bundled()) await sleep(20)
        child.kill(signal)
        expect(await exited).toBe(signal)
        expect(readdirSync(spill)).toEqual([])
      } finally {
        rmSync(dir, { recursive: true, force: true })
        rmSync(spill, { recursive: true, force: true })
      }
    })
  }
})
