// A replay input whose bytes are unusable (a .gz with bytes after its gzip data, or cut short) is
// rejected alone: before, it ended the replay with exit code 1 and no output, so one planted or corrupt
// object in a trail blinded a whole backtest. Now its records are left out (even those read before its
// bytes went bad), it is named on stderr and counted, the other files are replayed to the same bytes as
// without it, whatever the order of the arguments and the number of decoding threads, and the exit code
// (3) still tells a script. `--strict` keeps the old stop at the first such file.
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { shuffled, writeHourlyTrail } from '../helpers/hourly-trail-files.ts'
import { tempDir } from '../helpers/random-names.ts'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '../..')
const config = join(root, 'tests/fixtures/replay/nerve.yaml')

/** `nerve replay` with the replay fixture's config: its exit code, stdout, stderr's lines and summary. */
async function replay(args: string[]) {
  const done = await run(
    process.execPath,
    [join(root, 'bin/nerve.mjs'), 'replay', '--config', config, ...args],
    {
      maxBuffer: 64 << 20,
    },
  ).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => err,
  )
  const lines = done.stderr.trim().split('\n')
  const last = lines.at(-1) as string
  return { ...done, lines, summary: last.startsWith('{') ? JSON.parse(last) : undefined }
}

let good: string[]
let withBad: string[]
let garbage: string
let truncated: string

beforeAll(() => {
  // Four hours of a trail and its Falco alerts; hours 2 and 3's trail files go bad.
  const files = writeHourlyTrail(tempDir(), { hours: 4, recordsPerFile: 40 })
  const trails = files.filter((f) => f.endsWith('.json.gz'))
  truncated = trails[2] as string
  garbage = trails[3] as string
  good = files.filter((f) => f !== truncated && f !== garbage)
  const dir = tempDir()
  const badCopy = (from: string, bytes: Buffer) => {
    const path = join(dir, from.split('/').at(-1) as string)
    writeFileSync(path, bytes)
    return path
  }
  const whole = readFileSync(garbage)
  // Every record of this one is read before the bytes after its gzip data fail.
  garbage = badCopy(garbage, Buffer.concat([whole, Buffer.from('garbage-not-gzip')]))
  truncated = badCopy(truncated, readFileSync(truncated).subarray(0, 300))
  withBad = [...good, garbage, truncated]
})

describe('nerve replay with a bad .gz among its files', { timeout: 120_000 }, () => {
  it('replays the others to the same bytes, whatever the argument order and threads, and exits 3', async () => {
    const clean = await replay(good)
    expect(clean.code).toBe(0)
    expect(clean.summary).toMatchObject({ correlations: 20, files_rejected: 0 })
    const lines = [
      `nerve replay: ${truncated}: the gzip data ends early (the file is truncated). The file is rejected: none of its records is used.`,
      `nerve replay: ${garbage}: not valid gzip data (incorrect header check). The file is rejected: none of its records is used.`,
    ].sort()
    for (const [args, seed] of [
      [['--threads', '0'], 1],
      [['--threads', '2'], 2],
      [['--memory-budget', '1M'], 3],
    ] as const) {
      for (const inputs of [withBad, shuffled(withBad, seed)]) {
        const result = await replay([...args, ...inputs])
        expect(result.code).toBe(3)
        expect(result.stdout).toBe(clean.stdout)
        expect(result.summary).toEqual({
          ...clean.summary,
          files_rejected: 2,
          elapsed_ms: result.summary.elapsed_ms,
          peak_rss_mib: result.summary.peak_rss_mib,
        })
        // In file-name order, whatever the order of the arguments.
        expect(result.lines.slice(0, 2)).toEqual(lines)
      }
    }
  })

  it('--order input leaves the bad files out too', async () => {
    const clean = await replay(['--order', 'input', ...good])
    const result = await replay(['--order', 'input', ...withBad])
    expect(result.code).toBe(3)
    expect(result.stdout).toBe(clean.stdout)
    expect(result.summary).toMatchObject({ read: clean.summary.read, files_rejected: 2 })
  })

  it('--strict stops at the first bad file, as before, with exit code 1 and nothing written', async () => {
    for (const order of ['time', 'input']) {
      const result = await replay(['--strict', '--order', order, ...good, garbage])
      expect(result.code).toBe(1)
      expect(result.stdout).toBe('')
      expect(result.lines).toEqual([
        `nerve replay: ${garbage}: not valid gzip data (incorrect header check).`,
      ])
    }
  })

  it('--strict names the first bad file in name order, whatever the decoding threads', async () => {
    // Threads claim files from the back: the later bad file is met first, and used to be the one named.
    const first = await replay(['--strict', '--order', 'time', ...withBad])
    expect(first.code).toBe(1)
    expect(first.lines).toHaveLength(1)
    expect(first.lines[0]).toContain(truncated)
    for (const threads of ['1', '2', '5']) {
      const result = await replay(['--strict', '--order', 'time', '--threads', threads, ...withBad])
      expect({ threads, code: result.code, lines: result.lines }).toEqual({
        threads,
        code: 1,
        lines: first.lines,
      })
    }
  })

  it('only bad files: nothing replayed, exit code 1', async () => {
    const result = await replay([garbage, truncated])
    expect(result.code).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.summary).toMatchObject({ read: 0, files_rejected: 2 })
  })
})
