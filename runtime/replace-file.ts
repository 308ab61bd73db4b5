// A file replaced whole, so that a crash or power loss leaves its old contents or its new ones, never an
// empty or half-written file: written to a temp file beside it and fsynced, renamed over it, then its
// directory fsynced (a rename is on disk only once the directory is). The same steps as the Falco spool's
// and the revoke target key's writes, synchronous.
import { closeSync, constants, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

/** Replaces `path` with `text` (mode 0600 when it is made), durably; throws what the system says. */
export function replaceFileSync(path: string, text: string): void {
  const temp = `${path}.tmp`
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600)
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

/** Makes the entries of `dir` (a file made, renamed or linked there) durable. */
export function fsyncDirectorySync(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY)
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
