// `nerve replay`'s spill dir: a private temp dir under --spill-dir named with the replay's pid
// (`nerve-replay-<pid>-XXXXXX`), holding its sorted runs and its decoding threads' bundle. The replay
// removes it at its end, and on Ctrl-C or SIGTERM (merge-replay-files.ts); a kill -9 or a crash cannot,
// so each replay first removes the spill dirs of replays that no longer run, never one this process made
// (two replays in one process: a test, or a caller of the replay API).
import { type Dirent, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { processMayRun } from '../runtime/process-may-run.ts'

/** What mkdtempSync makes of `nerve-replay-<pid>-`: six letters and digits after it. */
const spillName = /^nerve-replay-(\d+)-[A-Za-z0-9]{6}$/

/**
 * The spill dirs this process made. One named with this pid that is not among them was left by an earlier
 * process that had the same pid (a container started again): it is removed like an ended replay's.
 */
const madeHere = new Set<string>()

/** Removes the spill dirs ended replays left in `parent`, then makes this replay's: its path. */
export function makeSpillDir(parent: string): string {
  removeEndedSpillDirs(parent)
  const dir = mkdtempSync(join(parent, `nerve-replay-${process.pid}-`))
  madeHere.add(dir)
  return dir
}

/**
 * Removes the dirs under `parent` of the spill dir's exact name whose replay no longer runs (ESRCH), owned by
 * this user. A symbolic link so named is no dir a replay made: it stays, and what it points at is never
 * touched. A dir without a pid (made by an earlier release) cannot be told from a running replay's: it
 * stays. Tidying only: a dir it cannot list or remove is left for the next replay. Replays in another pid
 * namespace are not seen from this one: containers sharing a spill dir on a volume must each have their own
 * --spill-dir (the OS temp dir, the default, is a container's own).
 */
function removeEndedSpillDirs(parent: string): number {
  let entries: Dirent[]
  try {
    entries = readdirSync(parent, { withFileTypes: true })
  } catch {
    return 0
  }
  const uid = process.getuid?.()
  let removed = 0
  for (const entry of entries) {
    const pid = spillName.exec(entry.name)?.[1]
    if (pid === undefined || !entry.isDirectory() || processMayRun(Number(pid))) continue
    const path = join(parent, entry.name)
    if (madeHere.has(path)) continue
    try {
      // lstat: what the name is now, not what a link it became since points at (rm removes a link only).
      const stat = lstatSync(path)
      if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid)) continue
      rmSync(path, { recursive: true, force: true, maxRetries: 3 })
      removed++
    } catch {
      // Another replay removed it meanwhile, or this user may not: the next replay tries again.
    }
  }
  return removed
}
