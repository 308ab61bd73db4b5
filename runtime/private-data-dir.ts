// The data dir holds raw events (Falco command lines, CloudTrail records with ARNs and keys), the ingest
// token, the revoke outbox: none of it is for other local users. On start the dir is made 0700 and what is
// already in it (from older versions) 0600/0700; the process umask 077 keeps everything created later
// (bus segments, SQLite files and their -wal/-shm, links, checkpoints) owner-only.
import { chmodSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

export function makeDataDirPrivate(dataDir: string): void {
  process.umask(0o077)
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  restrict(dataDir)
}

function restrict(dir: string): void {
  chmodSync(dir, 0o700)
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) restrict(path)
    else if (entry.isFile()) chmodSync(path, 0o600)
  }
}
