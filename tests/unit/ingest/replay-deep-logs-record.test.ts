// A record inside a CloudWatch Logs message is parsed apart from the file that carries it, so replay holds
// it to max_depth itself: a record nested 100,000 deep without an eventID overflowed the stack when its
// content-hash id was computed, and ended the replay.
import { rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { createReplayFilter } from '../../../correlate/replay-filter.ts'
import type { DecodedFile } from '../../../ingest/decode-replay-file.ts'
import { createReplayOpener } from '../../../ingest/open-replay-input.ts'
import { decodeReplayRuns } from '../../../ingest/replay-decode-pool.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { deepLogsPayload } from '../../helpers/deep-logs-message.ts'
import { tempDir } from '../../helpers/random-names.ts'

const root = resolve(import.meta.dirname, '../../..')
const config = loadConfig({ file: join(root, 'tests/fixtures/replay/nerve.yaml') })

async function decode(text: string): Promise<{ files: DecodedFile[]; events: number }> {
  const dir = tempDir('nerve-replay-deep')
  const file = join(dir, 'logs.ndjson')
  writeFileSync(file, `${text}\n`)
  const done: DecodedFile[] = []
  let events = 0
  let runs = 0
  try {
    await decodeReplayRuns([file], config, {
      threads: 0,
      maxDepth: 64,
      filter: createReplayFilter(config),
      filterModule: pathToFileURL(join(root, 'correlate/replay-filter.ts')),
      open: createReplayOpener({}),
      env: {},
      budgetBytes: 16 << 20,
      runDir: dir,
      newRunPath: () => join(dir, `main-${runs++}.bin`),
      keepInvalid: 20,
      onEvents: (n) => {
        events += n
      },
      onRun: () => {},
      onDone: (f) => done.push(f),
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return { files: done, events }
}

describe('replay: a record inside a CloudWatch Logs message', () => {
  it('is held to max_depth: a deep one is rejected alone, the others read', async () => {
    for (const depth of [65, 100_000]) {
      const { files, events } = await decode(JSON.stringify(deepLogsPayload(depth)))
      const [file] = files
      expect(events).toBe(1)
      expect(file?.invalidCount).toBe(2)
      expect(file?.invalid.map((i) => JSON.stringify(i))).toEqual([
        expect.stringContaining('nested deeper than 64 levels'),
        expect.stringContaining('nested deeper than 64 levels'),
      ])
    }
  })
})
