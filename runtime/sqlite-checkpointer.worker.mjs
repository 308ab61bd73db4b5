// The checkpointer thread of runtime/sqlite-file.ts: copies committed WAL frames into the database files
// (PASSIVE: never waits for, nor blocks, the writers on the main thread), one connection per file. Plain
// JavaScript so that it loads in a worker thread without the TypeScript loader.
import { writeFileSync } from 'node:fs'
import { parentPort } from 'node:worker_threads'
import Database from 'better-sqlite3'

// Named in the OS as runtime/thread-name.ts names the stage threads (this file loads without TypeScript).
try {
  writeFileSync('/proc/thread-self/comm', 'nerve-sqlite')
} catch {
  // Not Linux: the thread keeps its name.
}

/** @type {Map<string, import('better-sqlite3').Database>} */
const connections = new Map()

/** @param {string} file */
const connection = (file) => {
  let db = connections.get(file)
  if (!db) {
    db = new Database(file, { fileMustExist: true, timeout: 0 })
    db.pragma('wal_autocheckpoint = 0')
    connections.set(file, db)
  }
  return db
}

parentPort?.on('message', (/** @type {{ id: number, type: string, file: string }} */ message) => {
  try {
    let frames = 0
    if (message.type === 'checkpoint') {
      const result = connection(message.file).pragma('wal_checkpoint(PASSIVE)')
      // [{ busy, log, checkpointed }]: log is the frames the WAL holds since its last restart.
      frames = Number(result[0]?.log ?? 0)
    } else {
      connections.get(message.file)?.close()
      connections.delete(message.file)
    }
    parentPort?.postMessage({ id: message.id, ok: true, frames })
  } catch (err) {
    parentPort?.postMessage({ id: message.id, ok: false, error: String(err) })
  }
})
