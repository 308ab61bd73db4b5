// The key of the revoke outbox's target fingerprints (target-fingerprint.ts): 32 random bytes made on the
// first start, kept in the data dir beside the outbox (mode 0600), never in it. Lost or replaced, the
// fingerprints made under the old key are told apart by its id, and the targets they disabled stay disabled:
// the key only decides when a target a 410 disabled is enabled again, so a lost key fails safe.
import { randomBytes } from 'node:crypto'
import {
  closeSync,
  constants,
  type Dirent,
  fchmodSync,
  fstatSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { NerveError } from '../runtime/errors.ts'
import type { Logger } from '../runtime/logger.ts'
import { processMayRun } from '../runtime/process-may-run.ts'
import { fsyncDirectorySync } from '../runtime/replace-file.ts'

const keyBytes = 32
const fileName = 'revoke-target-key'
/** linkNewKey()'s temp files: `revoke-target-key.<pid>.<12 hex>.tmp`, named with the writing process's pid. */
const tempName = /^revoke-target-key\.(\d+)\.[0-9a-f]{12}\.tmp$/
/**
 * A temp file lives for the write and fsync of 32 bytes before its link. Whether its writer still runs is
 * told by its pid (nothing locks the data dir against a second process on Kafka, where no embedded bus holds
 * its file's lock); this age guards only the temps of processes whose pids this one cannot see (another pid
 * namespace: two containers on one volume), which it would otherwise take for ended ones.
 */
const staleTempMs = 60_000

/**
 * The data dir's key, made if it is missing or empty (a crash before its bytes reached the disk, with an
 * earlier version). It is written whole to a temp file, synced, and linked into place, so that a crash
 * leaves no part of it, and a second process on the same data dir that made its own reads the first's.
 * A symbolic link or a file of another size is refused: it is not a key nerve made. The temp files of
 * earlier crashes are removed first.
 */
export function readRevokeTargetKey(dataDir: string, log?: Logger): Buffer {
  const path = join(dataDir, fileName)
  removeStaleTemps(dataDir, log)
  // Three rounds: a key another process links meanwhile is whole, so the next round reads it.
  for (let round = 0; round < 3; round++) {
    const read = readKeyFile(path, log)
    if (read !== 'missing' && read !== 'empty') return read
    if (read === 'empty') unlinkUnlessGone(path)
    // Missing is the first start (a deleted key is told by each target it keeps disabled): info; empty is a
    // crash while an earlier version made it: warn.
    if (linkNewKey(dataDir, path))
      log?.[read === 'empty' ? 'warn' : 'info'](
        { path, found: read },
        'Made a new revoke target key: the webhook targets a 410 disabled under the one before stay disabled until their entry changes.',
      )
  }
  throw new NerveError(
    'CONFIG_INVALID',
    `The revoke target key ${path} could not be made; remove it and start again.`,
  )
}

/**
 * Removes the temp files crashes left, one a crash: regular files of linkNewKey()'s name only, whose writer no
 * longer runs (a live process's fsync may stall for minutes), older than staleTempMs. A symbolic link so named
 * is no file nerve made: it stays, and its target is never touched. Tidying only: a data dir it cannot list or
 * a file it cannot remove is warned of and left, never a reason not to start.
 */
function removeStaleTemps(dataDir: string, log?: Logger): void {
  let entries: Dirent[]
  try {
    entries = readdirSync(dataDir, { withFileTypes: true })
  } catch (err) {
    log?.warn(
      { dir: dataDir, code: (err as NodeJS.ErrnoException).code },
      'Could not look for the revoke target key temp files that crashes left; they stay.',
    )
    return
  }
  let removed = 0
  for (const entry of entries) {
    const pid = tempName.exec(entry.name)?.[1]
    if (entry.isFile() && pid !== undefined && !processMayRun(Number(pid)))
      if (removeStaleTemp(join(dataDir, entry.name), log)) removed++
  }
  if (removed > 0)
    log?.info(
      { dir: dataDir, removed },
      'Removed the revoke target key temp files that crashes left before their link.',
    )
}

/** Removes `temp` if it is still a regular file older than staleTempMs: whether it did. */
function removeStaleTemp(temp: string, log?: Logger): boolean {
  try {
    // lstat: what the name is now, not what a link it became since points at (unlink removes a link only).
    const stat = lstatSync(temp, { throwIfNoEntry: false })
    if (!stat?.isFile() || Date.now() - stat.mtimeMs < staleTempMs) return false
    unlinkSync(temp)
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    // Gone meanwhile: another process starting on the same data dir removed it.
    if (code !== 'ENOENT')
      log?.warn(
        { path: temp, code },
        'Could not remove a revoke target key temp file that a crash left; it stays.',
      )
    return false
  }
}

function unlinkUnlessGone(path: string): void {
  try {
    unlinkSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

/** The key in `path`, or why there is none to use. */
function readKeyFile(path: string, log?: Logger): Buffer | 'missing' | 'empty' {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return 'missing'
    if (code === 'ELOOP')
      throw refused(path, 'is a symbolic link; remove it and nerve makes a key in its place')
    throw err
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile())
      throw refused(path, 'is not a regular file; remove it and nerve makes a key in its place')
    if (stat.size === 0) return 'empty'
    if (stat.size !== keyBytes)
      throw refused(
        path,
        `holds ${stat.size} bytes, not ${keyBytes}. Delete it to have a new one made: the targets a 410 disabled then stay disabled until their config entry changes`,
      )
    // Looser than 0600 (a restore under another umask): tightened rather than refused, since the key guards
    // only against guessing a URL's token from a copy of the outbox, and a refusal would stop ingest too.
    if ((stat.mode & 0o077) !== 0) {
      fchmodSync(fd, 0o600)
      log?.warn(
        { path, mode: (stat.mode & 0o777).toString(8) },
        'Tightened the revoke target key to mode 0600: whoever could read it and a copy of the outbox can test guesses of a webhook URL; delete it to have a new one made.',
      )
    }
    const key = Buffer.alloc(keyBytes)
    if (readSync(fd, key, 0, keyBytes, 0) !== keyBytes) return 'empty'
    return key
  } finally {
    closeSync(fd)
  }
}

/** Links a new key into `path`, synced with its directory: false if another process linked one first. */
function linkNewKey(dataDir: string, path: string): boolean {
  const temp = join(dataDir, `${fileName}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  const fd = openSync(
    temp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  )
  try {
    writeSync(fd, randomBytes(keyBytes))
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    linkSync(temp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return false
  } finally {
    unlinkSync(temp)
  }
  fsyncDirectorySync(dataDir)
  return true
}

function refused(path: string, why: string): NerveError {
  return new NerveError('CONFIG_INVALID', `The revoke target key ${path} ${why}.`)
}
