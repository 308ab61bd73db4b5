// vitest globalSetup: the whole run's temporary files under one directory of its own, removed when the run
// ends. The tests write SQLite files (bus, store, checkpoints) of up to tens of MB each into fresh temp
// directories; left behind, repeated runs filled the disk. Every test and the processes it starts see the
// run's directory as their temp dir (TMPDIR, which os.tmpdir() reads), so nothing else needs to clean up.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'nerve-tests-'))
  const previous = process.env.TMPDIR
  process.env.TMPDIR = root
  return () => {
    if (previous === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previous
    rmSync(root, { recursive: true, force: true })
  }
}
