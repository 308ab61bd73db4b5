// `nerve replay --order time` writes into a private temp dir of its own (--spill-dir): sorted runs of the
// replayed records and, with --threads, the decoding threads' bundle. Interrupted (Ctrl-C, a kill), it
// must not leave that dir behind: the process ends as the signal asks, without its finally blocks. A kill -9
// runs no handler: the next replay removes the dir of a process that no longer runs, and nothing else.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
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

  it('removes, at its start, the spill dir a killed replay left, and only the dirs of processes that ended', async () => {
    const dir = tempDir()
    const spill = tempDir()
    const elsewhere = tempDir()
    try {
      const files = writeHourlyTrail(dir, { hours: 300, recordsPerFile: 400 })
      const args = [join(root, 'bin/nerve.mjs'), 'replay', '--config', config, '--memory-budget', '1M']
      const child = spawn(process.execPath, [...args, '--spill-dir', spill, ...files], { stdio: 'ignore' })
      const exited = new Promise<NodeJS.Signals | null>((done) => child.on('exit', (_, s) => done(s)))
      const spilled = () =>
        readdirSync(spill).some((d) => readdirSync(join(spill, d)).some((f) => /^run-\d+\.bin$/.test(f)))
      while (!spilled()) await sleep(20)
      child.kill('SIGKILL')
      expect(await exited).toBe('SIGKILL')
      const [left] = readdirSync(spill)
      expect(left).toMatch(new RegExp(`^nerve-replay-${child.pid}-`))

      // Beside it: a dir of a process that still runs (this one), one of an earlier release (no pid: its
      // writer cannot be told), other names, and a link named as a dead process's dir: all stay.
      const ended = spawnSync(process.execPath, ['-e', '']).pid
      const kept = [
        `nerve-replay-${process.pid}-a1B2c3`,
        'nerve-replay-Xy12Zw',
        `nerve-replay-${ended}-a1B2c3.x`,
      ]
      for (const name of kept) mkdirSync(join(spill, name))
      writeFileSync(join(elsewhere, 'keep.txt'), 'not replay')
      symlinkSync(elsewhere, join(spill, `nerve-replay-${ended}-l1nk00`))
      kept.push(`nerve-replay-${ended}-l1nk00`)

      const again = spawnSync(process.execPath, [
        ...args,
        '--spill-dir',
        spill,
        files[0] as string,
        '--out',
        join(dir, 'out.ndjson'),
      ])
      expect(again.status).toBe(0)
      expect(readdirSync(spill).sort()).toEqual(kept.sort())
      expect(readdirSync(elsewhere)).toEqual(['keep.txt'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
      rmSync(spill, { recursive: true, force: true })
      rmSync(elsewhere, { recursive: true, force: true })
    }
  })
})
