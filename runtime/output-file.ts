// Where a command writes its result: stdout, or a file (`nerve replay --out`). The file is checked
// before any input is read, so that a path it cannot write (no such directory, a directory, no
// permission) fails at once in one line; a write that fails later (a full disk) ends the command in one
// line too, not in an unhandled 'error' event. A regular file is written beside its path
// (`.NAME.PID.partial`) and renamed over it only once whole: a replay that fails, or never starts,
// leaves an existing file as it was and no half-written one. A device or a pipe (`/dev/stdout`, a FIFO)
// is written in place.
import { createWriteStream, type Stats, statSync, type WriteStream } from 'node:fs'
import { rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { NerveError } from './errors.ts'
import { startupFailureLine } from './startup-failure.ts'

export type Output = {
  /** Resolves once the stream takes more (after 'drain' when it is full); rejects once a write failed. */
  write(text: string): Promise<void>
  /** Writes the rest and resolves once it is flushed and in place; rejects if a write failed. */
  end(text: string): Promise<void>
  /** The command failed: drops what was written (an existing file stays as it was). Never rejects. */
  abandon(): Promise<void>
  /** Throws when the output is one of `paths` (the command's own inputs): it would be overwritten. */
  refuseInputs(paths: readonly string[]): void
}

export async function openOutput(path: string | undefined): Promise<Output> {
  if (path === undefined) {
    const stdout = process.stdout
    return {
      write: (text) =>
        new Promise((resolve) => (stdout.write(text) ? resolve() : stdout.once('drain', resolve))),
      end: (text) =>
        new Promise((resolve, reject) => stdout.write(text, (err) => (err ? reject(err) : resolve()))),
      abandon: async () => {},
      refuseInputs: () => {},
    }
  }
  const existing = statOrUndefined(path)
  if (existing?.isDirectory())
    throw outputError(path, Object.assign(new Error('is a directory'), { code: 'EISDIR' }))
  const partial =
    existing === undefined || existing.isFile()
      ? join(dirname(path), `.${basename(path)}.${process.pid}.partial`)
      : undefined
  const stream = createWriteStream(partial ?? path)
  let failure: NerveError | undefined
  let settled = false
  const failed = new Promise<never>((_, reject) =>
    stream.on('error', (err) => {
      failure ??= outputError(path, err)
      reject(failure)
    }),
  )
  // Nobody may be waiting when a write fails: the next write() or end() rejects instead.
  failed.catch(() => {})
  await Promise.race([new Promise((resolve) => stream.once('open', resolve)), failed])
  const drop = async () => {
    settled = true
    stream.destroy()
    if (partial) await unlink(partial).catch(() => {})
  }
  return {
    write: async (text) => {
      if (failure) throw failure
      if (!stream.write(text)) await Promise.race([waitFor(stream, 'drain'), failed])
    },
    end: async (text) => {
      if (failure) throw failure
      stream.end(text)
      await Promise.race([waitFor(stream, 'close'), failed])
      if (failure) throw failure
      if (partial)
        await rename(partial, path).catch(async (err: Error) => {
          await drop()
          throw outputError(path, err)
        })
      settled = true
    },
    abandon: async () => {
      if (!settled) await drop()
    },
    refuseInputs: (paths) => {
      if (!existing) return
      for (const input of paths) {
        const stats = statOrUndefined(input)
        if (stats && stats.dev === existing.dev && stats.ino === existing.ino)
          throw new NerveError('INPUT_INVALID', `${path}: is also an input; --out would overwrite it.`)
      }
    },
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

const waitFor = (stream: WriteStream, event: string) =>
  new Promise<void>((resolve) => stream.once(event, () => resolve()))

function outputError(path: string, err: Error): NerveError {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new NerveError('STORAGE_FULL', `${path}: no space left on the device.`, { cause: err })
  const line = startupFailureLine(Object.assign(err, { path }))
  return new NerveError('SINK_UNAVAILABLE', line ?? `${path}: ${err.message}`, { cause: err })
}
