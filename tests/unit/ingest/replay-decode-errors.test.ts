// An input replay cannot read ends it with the same error whether the main thread decodes or decoding
// threads do: the same class, NerveError code, system error code and path, and message, so the CLI prints
// the same one line and exits with the same code (before, a thread's error reached the main thread as a
// plain Error, "file: message", and the CLI printed a stack trace).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { createReplayFilter } from '../../../correlate/replay-filter.ts'
import { errorFromThread, postedError } from '../../../ingest/error-across-threads.ts'
import { createReplayOpener } from '../../../ingest/open-replay-input.ts'
import { decodeReplayRuns } from '../../../ingest/replay-decode-pool.ts'
import { NerveError } from '../../../runtime/errors.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { startupFailureLine } from '../../../runtime/startup-failure.ts'
import { tempDir } from '../../helpers/random-names.ts'

const root = resolve(import.meta.dirname, '../../..')
const filterModule = pathToFileURL(join(root, 'correlate/replay-filter.ts'))
const config = loadConfig({ file: join(root, 'tests/fixtures/replay/nerve.yaml') })
const falco = join(root, 'tests/fixtures/replay/falco-alerts.ndjson')
const trail = join(
  root,
  'tests/fixtures/replay/123456789012_CloudTrail_us-west-2_20210410T1930Z_tester.json.gz',
)

/** The error decoding `files` ends with, in the main thread (0) or in decoding threads. */
async function decodeError(files: string[], threads: number, strict = false): Promise<Error> {
  const runDir = tempDir('nerve-replay-runs')
  let runs = 0
  try {
    await decodeReplayRuns(files, config, {
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
      strict,
      onEvents: () => {},
      onRun: () => {},
      onDone: () => {},
    })
  } catch (err) {
    return err as Error
  } finally {
    rmSync(runDir, { recursive: true, force: true })
  }
  throw new Error('decoding did not fail')
}

/** What the CLI's one line is made from. */
const shown = (err: Error) => {
  const e = err as Error & { code?: string; syscall?: string; path?: string }
  return {
    nerve: err instanceof NerveError,
    code: e.code,
    syscall: e.syscall,
    path: e.path,
    message: err.message,
    line: err instanceof NerveError ? err.message : startupFailureLine(err),
  }
}

describe('errors of decoding threads', { timeout: 60_000 }, () => {
  it('a file gone after the inputs were listed: the same system error, path and line', async () => {
    const gone = join(tempDir('nerve-replay-gone'), 'gone.ndjson')
    const inMain = shown(await decodeError([falco, gone], 0))
    expect(inMain).toMatchObject({ nerve: false, code: 'ENOENT', path: gone })
    expect(inMain.line).toBe(`${gone}: no such file or directory.`)
    expect(shown(await decodeError([falco, gone], 2))).toEqual(inMain)
  })

  it('a directory where a file was expected: the same EISDIR line', async () => {
    const dir = join(tempDir('nerve-replay-dir'), 'hour.ndjson')
    mkdirSync(dir)
    const inMain = shown(await decodeError([dir], 0))
    expect(inMain).toMatchObject({ code: 'EISDIR', line: `${dir} is a directory, not a file.` })
    expect(shown(await decodeError([dir], 1))).toEqual(inMain)
  })

  it('--strict: a truncated .gz, and a .gz that is not gzip: INPUT_INVALID naming the file, in both paths', async () => {
    const dir = tempDir('nerve-replay-gz')
    const truncated = join(dir, '123456789012_CloudTrail_us-west-2_20210410T2000Z_cut.json.gz')
    writeFileSync(truncated, readFileSync(trail).subarray(0, 100))
    const notGzip = join(dir, '123456789012_CloudTrail_us-west-2_20210410T2100Z_text.json.gz')
    writeFileSync(notGzip, '{"Records":[]}\n')
    for (const [file, line] of [
      [truncated, `${truncated}: the gzip data ends early (the file is truncated).`],
      [notGzip, `${notGzip}: not valid gzip data (incorrect header check).`],
    ] as const) {
      const inMain = shown(await decodeError([falco, file], 0, true))
      expect(inMain).toMatchObject({ nerve: true, code: 'INPUT_INVALID', line })
      expect(shown(await decodeError([falco, file], 2, true))).toEqual(inMain)
    }
  })

  it('a NerveError keeps its code and message across threads', () => {
    const err = errorFromThread(
      postedError(new NerveError('INPUT_INVALID', 's3://trail/a.json.gz has no body.', { retriable: true })),
    )
    expect(err).toBeInstanceOf(NerveError)
    expect(err).toMatchObject({
      code: 'INPUT_INVALID',
      retriable: true,
      message: 's3://trail/a.json.gz has no body.',
    })
    expect(errorFromThread(postedError('a string'))).toMatchObject({ message: 'a string' })
  })
})
