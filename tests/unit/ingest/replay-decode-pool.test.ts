// Replay's decoding threads (ingest/replay-decode-pool.ts): each is given its next files before it needs
// them and reads the one after the current file ahead, as the main thread does when it decodes alone.
import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { createReplayFilter } from '../../../correlate/replay-filter.ts'
import type { DecodedFile } from '../../../ingest/decode-replay-file.ts'
import { createReplayOpener } from '../../../ingest/open-replay-input.ts'
import { decodeReplayRuns } from '../../../ingest/replay-decode-pool.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { tempDir } from '../../helpers/random-names.ts'

const root = resolve(import.meta.dirname, '../../..')
const config = loadConfig({ file: join(root, 'tests/fixtures/replay/nerve.yaml') })
const alerts = gzipSync(readFileSync(join(root, 'tests/fixtures/replay/falco-alerts.ndjson')))

/** Opens a FIFO for writing once some reader has it open; undefined if none has within `ms`. */
async function writerOnceRead(path: string, ms: number): Promise<number | undefined> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    try {
      // Without a reader, a non-blocking open for writing fails with ENXIO.
      return openSync(path, constants.O_WRONLY | constants.O_NONBLOCK)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err
    }
    await sleep(20)
  }
  return undefined
}

describe('decodeReplayRuns with decoding threads', () => {
  it('reads the next file ahead while the current one has not even begun', { timeout: 60_000 }, async () => {
    // Two FIFOs: the first gives nothing until the second has been opened. A thread that opens its next
    // file only when the current one is done never opens the second.
    const dir = tempDir('nerve-replay-pool')
    const runDir = tempDir('nerve-replay-runs')
    const [first, second] = ['a.ndjson.gz', 'b.ndjson.gz'].map((name) => join(dir, name)) as [string, string]
    execFileSync('mkfifo', [first, second])
    const done: DecodedFile[] = []
    let runs = 0
    try {
      const decoding = decodeReplayRuns([first, second], config, {
        threads: 1,
        maxDepth: 64,
        filter: createReplayFilter(config),
        filterModule: pathToFileURL(join(root, 'correlate/replay-filter.ts')),
        open: createReplayOpener({}),
        env: {},
        budgetBytes: 16 << 20,
        runDir,
        newRunPath: () => join(runDir, `main-${runs++}.bin`),
        keepInvalid: 20,
        onEvents: () => {},
        onRun: () => {},
        onDone: (file) => done.push(file),
      })
      const fd = await writerOnceRead(second, 15_000)
      const openedAhead = fd !== undefined
      // Either way, give both files their bytes so that the decoding ends.
      if (fd !== undefined) {
        writeSync(fd, alerts)
        closeSync(fd)
        await writeFile(first, alerts)
      } else {
        await writeFile(first, alerts)
        await writeFile(second, alerts)
      }
      await decoding
      expect(openedAhead).toBe(true)
      expect(done.map((d) => d.file).sort()).toEqual([first, second])
    } finally {
      rmSync(dir, { recursive: true, force: true })
      rmSync(runDir, { recursive: true, force: true })
    }
  })
})
