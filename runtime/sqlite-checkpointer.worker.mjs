// The checkpointer thread of runtime/sqlite-file.ts: copies committed WAL frames into the database files
// (PASSIVE: never waits for, nor blocks, the writers on the main thread), one connection per file. Plain
// JavaScript so that it loads in a worker thread without the TypeScript loader.
import { closeSync, fdatasyncSync, openSync, writeFileSync } from 'node:fs'
import { parentPort } from 'node:worker_threads'
import Database from 'better-sqlite3'

// Named in the OS as runtime/thread-name.ts names the stage threads (this file loads without TypeScript).
try {
  writeFileSync('/proc/thread-self/comm', 'nerve-sqlite')
} catch {
  // Not Linux: the thread keeps its name.
}

/** @type {Map<string, { db: import('better-sqlite3').Database, fd: number }>} */
const connections = new Map()

/** @param {string} file */
const connection = (file) => {
  let c = connections.get(file)
  if (!c) {
    const db = new Database(file, { fileMustExist: true, timeout: 0 })
    db.pragma('wal_autocheckpoint = 0')
    c = { db, fd: openSync(file, 'r') }
    connections.set(file, c)
  }
  return c
}

/**
 * SQLite syncs the database file only when a checkpoint reaches the WAL's last frame (under a constant
 * stream of commits, never in the background), and that sync then writes back every page the checkpoints
 * before it copied. For the bus that checkpoint is the one its WAL's restart waits for with every publish
 * held (sqlite-file.ts): about 35 MB of pages every 3 s under the revoke bench's load, 80-150 ms held. Each
 * checkpoint's pages are written back here instead, on this thread, holding no writer.
 * @param {{ fd: number }} c
 */
const writeBack = (c) => fdatasyncSync(c.fd)

parentPort?.on('message', (/** @type {{ id: number, type: string, file: string }} */ message) => {
  try {
    let frames = 0
    if (message.type === 'checkpoint') {
      const c = connection(message.file)
      const result = c.db.pragma('wal_checkpoint(PASSIVE)')
      // [{ busy, log, checkpointed }]: log is the frames the WAL holds since its last restart.
      frames = Number(result[0]?.log ?? 0)
      writeBack(c)
    } else {
      const c = connections.get(message.file)
      if (c) {
        c.db.close()
        closeSync(c.fd)
      }
      connections.delete(message.file)
    }
    parentPort?.postMessage({ id: message.id, ok: true, frames })
  } catch (err) {
    parentPort?.postMessage({ id: message.id, ok: false, error: String(err) })
  }
})
