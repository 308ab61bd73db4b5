// Where a command writes its result: stdout, or a file (`nerve replay --out`) opened before any input is
// read, so that a path it cannot write (no such directory, a directory, no permission) fails at once in
// one line, and a write that fails later (a full disk) ends the command in one line too, not in an
// unhandled 'error' event.
import { createWriteStream, type WriteStream } from 'node:fs'
import { NerveError } from './errors.ts'
import { startupFailureLine } from './startup-failure.ts'

export type Output = {
  /** Resolves once the stream takes more (after 'drain' when it is full); rejects once a write failed. */
  write(text: string): Promise<void>
  /** Writes the rest and resolves once it is flushed (the file closed); rejects if a write failed. */
  end(text: string): Promise<void>
}

export async function openOutput(path: string | undefined): Promise<Output> {
  if (path === undefined) {
    const stdout = process.stdout
    return {
      write: (text) =>
        new Promise((resolve) => (stdout.write(text) ? resolve() : stdout.once('drain', resolve))),
      end: (text) =>
        new Promise((resolve, reject) => stdout.write(text, (err) => (err ? reject(err) : resolve()))),
    }
  }
  const stream = createWriteStream(path)
  let failure: NerveError | undefined
  const failed = new Promise<never>((_, reject) =>
    stream.on('error', (err) => {
      failure ??= outputError(path, err)
      reject(failure)
    }),
  )
  // Nobody may be waiting when a write fails: the next write() or end() rejects instead.
  failed.catch(() => {})
  await Promise.race([new Promise((resolve) => stream.once('open', resolve)), failed])
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
    },
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
