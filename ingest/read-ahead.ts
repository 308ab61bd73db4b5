// Replay's main thread reads its files one after another: while it parses and normalizes one, nothing was
// read or decompressed of the next, so each file began with the main thread waiting for the disk (or S3)
// and the gunzip in libuv's pool (about a tenth of a replay's time, idle). An opener wrapped here starts
// the next file as the current one is opened and holds at most `aheadBytes` of its bytes (decompressed)
// until it is asked for; past that the stream is paused, so memory stays bounded whatever the file's size.
// An error of the file read ahead (it cannot be opened, its gzip is broken) comes when that file is read,
// as it would have without reading ahead.
import { Readable } from 'node:stream'

export type Opener = (path: string) => Promise<Readable>

/**
 * An opener for `files`, in that order, that reads the next file ahead while the caller reads the
 * current one. A path not in `files`, or asked for out of order, is opened as usual.
 */
export function readAhead(
  open: Opener,
  files: readonly string[],
  aheadBytes: number,
): Opener & { close(): void } {
  let ahead: { path: string; stream: Promise<Readable> } | undefined
  let next = 0
  const start = (path: string) => {
    const stream = open(path).then((s) => buffered(s, aheadBytes))
    // Its error is given to whoever opens the file, not thrown now as unhandled.
    stream.catch(() => {})
    ahead = { path, stream }
  }
  const opener = (path: string): Promise<Readable> => {
    let stream: Promise<Readable>
    if (ahead?.path === path) {
      stream = ahead.stream
      ahead = undefined
    } else stream = open(path)
    const at = files.indexOf(path, next)
    if (at !== -1) {
      next = at + 1
      const following = files[next]
      if (following !== undefined && ahead === undefined) start(following)
    }
    return stream
  }
  const close = () => {
    const left = ahead
    ahead = undefined
    left?.stream.then(
      (s) => s.destroy(),
      () => {},
    )
  }
  return Object.assign(opener, { close })
}

/**
 * `source`'s bytes, read as they come and held up to `limit` (then the source is paused until the reader
 * takes some), as a stream for the reader. Destroying it destroys the source, read or not: a replay that
 * stops early closes the file read ahead (an async generator never started would skip its `finally`).
 */
function buffered(source: Readable, limit: number): Readable {
  const chunks: Buffer[] = []
  let held = 0
  let ended = false
  let failure: Error | undefined
  let wanted = false
  let finished = false
  const out = new Readable({
    read() {
      wanted = true
      give()
    },
    destroy(err, callback) {
      if (!ended) source.destroy()
      callback(err)
    },
  })
  const give = () => {
    while (wanted && chunks.length > 0) {
      const chunk = chunks.shift() as Buffer
      held -= chunk.length
      wanted = out.push(chunk)
    }
    if (held < limit && source.isPaused() && !ended) source.resume()
    if (chunks.length > 0 || out.destroyed || finished) return
    // The error is given once the reader asks for bytes: destroyed before, the stream would emit it
    // with no one listening yet (an uncaught exception: a broken .gz read ahead ended replay so).
    if (failure) {
      if (wanted) out.destroy(failure)
    } else if (ended) {
      finished = true
      out.push(null)
    }
  }
  source.on('data', (chunk: Buffer) => {
    chunks.push(chunk)
    held += chunk.length
    if (held >= limit) source.pause()
    give()
  })
  source.on('end', () => {
    ended = true
    give()
  })
  source.on('error', (err: Error) => {
    failure = err
    give()
  })
  return out
}
