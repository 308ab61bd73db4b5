// A file replaced whole, so that a crash or power loss leaves its old contents or its new ones, never an
// empty or half-written file: written to a temp file beside it and fsynced, renamed over it, then its
// directory fsynced (a rename is on disk only once the directory is). The same steps as the Falco spool's
// and the revoke target key's writes: synchronous, or in parts for a file too large for one turn.
import {
  close,
  closeSync,
  constants,
  fsync,
  fsyncSync,
  open,
  openSync,
  renameSync,
  unlink,
  unlinkSync,
  write,
  writeSync,
} from 'node:fs'
import { dirname } from 'node:path'
import { promisify } from 'node:util'

const openAsync = promisify(open)
const writeAsync = promisify(write)
const fsyncAsync = promisify(fsync)
const closeAsync = promisify(close)
const unlinkAsync = promisify(unlink)

const tempFlags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC

/** Replaces `path` with `text` (mode 0600 when it is made), durably; throws what the system says. */
export function replaceFileSync(path: string, text: string): void {
  const temp = `${path}.tmp`
  const fd = openSync(temp, tempFlags, 0o600)
  try {
    try {
      writeSync(fd, text)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(temp, path)
  } catch (err) {
    try {
      unlinkSync(temp)
    } catch {}
    throw err
  }
  fsyncDirectorySync(dirname(path))
}

/**
 * Replaces `path` as replaceFileSync does, without holding the event loop: each of `parts` (taken one at a
 * time, so a generator spreads its making too) is written in a turn of its own, and the fsyncs run on
 * libuv's threads. `renamed` runs in the turn of the rename, before any other code can touch the new file
 * (what was appended to the old one meanwhile goes after it there). Rejects with what the system says,
 * the temp file removed and `path` untouched.
 */
export async function replaceFileInParts(
  path: string,
  parts: Iterable<string>,
  renamed: () => void = () => {},
): Promise<void> {
  const temp = `${path}.tmp`
  const fd = await openAsync(temp, tempFlags, 0o600)
  try {
    try {
      for (const part of parts) {
        const bytes = Buffer.from(part)
        for (let at = 0; at < bytes.length; ) at += (await writeAsync(fd, bytes, at)).bytesWritten
      }
      await fsyncAsync(fd)
    } finally {
      await closeAsync(fd)
    }
    renameSync(temp, path)
  } catch (err) {
    await unlinkAsync(temp).catch(() => {})
    throw err
  }
  renamed()
  const dir = await openAsync(dirname(path), constants.O_RDONLY)
  try {
    await fsyncAsync(dir)
  } finally {
    await closeAsync(dir)
  }
}

/** Makes the entries of `dir` (a file made, renamed or linked there) durable. */
export function fsyncDirectorySync(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY)
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
