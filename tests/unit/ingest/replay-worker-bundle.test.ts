// Replay's decoding threads run a bundle made when the replay starts (ingest/replay-worker-bundle.ts):
// plain JavaScript that imports no TypeScript, so a thread needs no loader (and no loader's hooks thread,
// about 26 MiB each), and it decodes what the main thread decodes.
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { createReplayFilter } from '../../../correlate/replay-filter.ts'
import type { DecodedFile } from '../../../ingest/decode-replay-file.ts'
import { createReplayOpener } from '../../../ingest/open-replay-input.ts'
import { decodeReplayRuns } from '../../../ingest/replay-decode-pool.ts'
import { bundleDecodeWorker } from '../../../ingest/replay-worker-bundle.ts'
import type { RunInfo } from '../../../ingest/sorted-run-records.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { writeHourlyTrail } from '../../helpers/hourly-trail-files.ts'
import { tempDir } from '../../helpers/random-names.ts'

const root = resolve(import.meta.dirname, '../../..')
const filterModule = pathToFileURL(join(root, 'correlate/replay-filter.ts'))
const config = loadConfig({ file: join(root, 'tests/fixtures/replay/nerve.yaml') })
const files = [
  join(root, 'tests/fixtures/replay/123456789012_CloudTrail_us-west-2_20210410T1930Z_tester.json.gz'),
  join(root, 'tests/fixtures/replay/falco-alerts.ndjson'),
]

/** The esbuild service processes this process has started and not ended (Linux: from /proc). */
const esbuildChildren = () =>
  readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        // The parent pid is the second field after the command in parentheses.
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
        return ppid === process.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--service=')
      } catch {
        return false // ended while listed
      }
    })

/** Every import specifier of a bundled file (static, dynamic and re-exports). */
const importsOf = (text: string) =>
  [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)"([^"]+)"/g)].map((m) => m[1] as string)

describe('bundleDecodeWorker', () => {
  it('gives plain JavaScript: packages as file URLs, chunks by path, builtins by name, no TypeScript', async () => {
    const dir = tempDir('nerve-replay-bundle')
    try {
      const entry = await bundleDecodeWorker(dir, filterModule)
      expect(entry.href).toBe(pathToFileURL(join(dir, 'decode-worker/entry.mjs')).href)
      const out = join(dir, 'decode-worker')
      const bundled = readdirSync(out)
      expect(bundled.every((f) => f.endsWith('.mjs'))).toBe(true)
      const specifiers = bundled.flatMap((f) => importsOf(readFileSync(join(out, f), 'utf8')))
      const ajv = realpathSync(join(root, 'node_modules/ajv/dist/2020.js'))
      expect(specifiers).toContain(pathToFileURL(ajv).href)
      for (const s of specifiers) expect(s).toMatch(/^(file:\/\/\/.*\.(c|m)?js|\.\/[\w-]+\.mjs|node:\w+)$/)
      // The S3 client is loaded on first use, as in the main thread: a chunk of its own.
      const entryText = readFileSync(join(out, 'entry.mjs'), 'utf8')
      expect(entryText).not.toContain('@aws-sdk/client-s3')
      // What a module reads beside its source (the validators' schemas) is found from where it is.
      expect(entryText).toContain(JSON.stringify(pathToFileURL(join(root, 'schemas/validators.ts')).href))
      expect(entryText).not.toMatch(/import\.meta\.(url|dirname|filename)/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  // esbuild keeps its service process (about 23 MiB resident, outside the replay's own peak RSS) until
  // the process exits unless told to stop: the whole replay, merge included, after one build.
  it('leaves no esbuild process running once the bundle is written', {
    skip: !existsSync('/proc'),
  }, async () => {
    const dir = tempDir('nerve-replay-bundle')
    try {
      await bundleDecodeWorker(dir, filterModule)
      // None left, this build's nor an earlier one's (this file runs in a process of its own). Stopping
      // is a signal: a process may take a moment to end on a loaded machine.
      for (let waited = 0; esbuildChildren().length > 0 && waited < 5_000; waited += 50) await sleep(50)
      expect(esbuildChildren()).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('decodes in threads what the main thread decodes', async () => {
    const decode = async (threads: number, files: string[]) => {
      const runDir = tempDir('nerve-replay-runs')
      let events = 0
      let runs = 0
      const runRecords: RunInfo[] = []
      const done: unknown[] = []
      try {
        const held = await decodeReplayRuns(files, config, {
          threads,
          maxDepth: 64,
          filter: createReplayFilter(config),
          filterModule,
          open: createReplayOpener({}),
          env: {},
          budgetBytes: 16 << 20,
          runDir,
          newRunPath: () => join(runDir, `main-${runs++}.bin`),
          keepInvalid: 20,
          onEvents: (count) => {
            events += count
          },
          onRun: (run) => runRecords.push(run),
          onDone: (file) => done.push(file),
        })
        const recordsHeld = held.entries.length + runRecords.reduce((sum, r) => sum + r.count, 0)
        return { events, recordsHeld, done }
      } finally {
        rmSync(runDir, { recursive: true, force: true })
      }
    }
    const inMain = await decode(0, files)
    const inThreads = await decode(2, files)
    expect(inMain.events).toBeGreaterThan(25)
    expect(inThreads.events).toBe(inMain.events)
    expect(inThreads.recordsHeld).toBe(inMain.recordsHeld)
    const byFile = (d: unknown[]) =>
      [...d].sort((a, b) => ((a as { file: string }).file < (b as { file: string }).file ? -1 : 1))
    expect(byFile(inThreads.done)).toEqual(byFile(inMain.done))
  })

  it('decodes with the main thread beside a thread what the main thread decodes alone', async () => {
    const trail = tempDir('nerve-replay-trail')
    const files = writeHourlyTrail(trail, { hours: 12, recordsPerFile: 100 }).sort()
    const decode = async (
      threads: number,
      open: (path: string) => Promise<Readable>,
      done: DecodedFile[],
    ) => {
      const runDir = tempDir('nerve-replay-runs')
      let events = 0
      const threadRuns: RunInfo[] = []
      try {
        const held = await decodeReplayRuns(files, config, {
          threads,
          mainDecodes: true,
          maxDepth: 64,
          filter: createReplayFilter(config),
          filterModule,
          open,
          env: {},
          budgetBytes: 16 << 20,
          runDir,
          newRunPath: () => join(runDir, 'main.bin'),
          keepInvalid: 20,
          onEvents: (count) => {
            events += count
          },
          onRun: (run) => threadRuns.push(run),
          onDone: (file) => done.push(file),
        })
        return { events, held: held.entries.length, threadRuns, done }
      } finally {
        rmSync(runDir, { recursive: true, force: true })
      }
    }
    try {
      const alone = await decode(0, createReplayOpener({}), [])
      // Beside a thread: the main thread claims the first file at once, then opens nothing until the
      // thread (from the back) has decoded the last one, so both decode part of the files.
      const opener = createReplayOpener({})
      const done: DecodedFile[] = []
      const beside = await decode(
        1,
        async (path) => {
          while (!done.some((d) => d.file === files.at(-1))) await sleep(10)
          return opener(path)
        },
        done,
      )
      expect(alone.events).toBe(1_224)
      expect(beside.events).toBe(alone.events)
      // Both decoded: the main thread holds its records, the thread handed its own over as a run.
      expect(beside.held).toBeGreaterThan(0)
      expect(beside.threadRuns.reduce((sum, r) => sum + r.count, 0)).toBeGreaterThan(0)
      expect(beside.held + beside.threadRuns.reduce((sum, r) => sum + r.count, 0)).toBe(alone.held)
      const byFile = (d: DecodedFile[]) => [...d].sort((a, b) => (a.file < b.file ? -1 : 1))
      expect(byFile(beside.done)).toEqual(byFile(alone.done))
    } finally {
      rmSync(trail, { recursive: true, force: true })
    }
  })
})
