// One way to open the SQLite files nerve writes (bus, checkpoints, store, outbox), so that none of them ever
// stops the event loop for the disk:
// - WAL with synchronous=NORMAL: a commit appends its frames without waiting for the disk; sync() then
//   fdatasyncs the WAL on libuv's thread pool (concurrent callers share one). Awaiting sync() after a
//   commit gives what synchronous=FULL gives (the commit survives power loss) without blocking the loop
//   on the fsync.
// - wal_autocheckpoint=0: SQLite's automatic checkpoint would copy the WAL into the database and fsync it
//   inside whichever commit crosses 1,000 pages, stalling that commit (and the loop) for 5–25 ms. Checkpoints
//   run instead in a worker thread (sqlite-checkpointer.worker.mjs) on a second connection, in PASSIVE mode,
//   which never blocks this connection's writers. Under a constant stream of commits a PASSIVE checkpoint
//   never catches up with the last frame (commits land while it copies), so the WAL is never restarted and
//   grows. Once more than `restartWalBytes` (32 MB) were written to it since it last restarted (the frame
//   count a background checkpoint reports), the first sync() after that checkpoint has finished waits for
//   one more checkpoint with no write in between, so the next commit restarts the WAL from its beginning.
//   That checkpoint copies only what was committed while the background one ran (a few hundred KB), and
//   its sync of the database has little to write: the checkpointer thread writes back each background
//   checkpoint's pages as it ends (held, the sync wrote back 3 s of them, 80-150 ms). Waiting for `maxWalBytes` instead made it copy up to a second of commits, and
//   held every publish of the bus for 17-56 ms every 4 s under the revoke bench's 5,000 events/s.
//   `maxWalBytes` stays the bound should background checkpoints fail or fall behind.
// - A restarted WAL keeps its file (journal_size_limit = maxWalBytes) and is written over from its
//   beginning: truncating it to 16 MB at each restart freed the 30-40 MB it had grown into inside the next
//   commit, on the writer's thread (the event loop, for the bus), 10-30 ms at a time on a busy disk, and the
//   WAL then grew into newly allocated blocks again.
// - `singleOwner`: an exclusive lock on `<file>-lock`, held until close, so a second process on the same data
//   directory fails at once (the database itself must stay shared with the checkpointer).
import { closeSync, fdatasync, fstatSync, openSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import Database from 'better-sqlite3'
import type { NerveError } from './errors.ts'

export type SqliteFile = {
  readonly db: Database.Database
  readonly file: string
  /** Resolves once every transaction committed so far is on disk (fdatasync of the WAL, off the loop). */
  sync(): Promise<void>
  close(): Promise<void>
}

export type SqliteFileOptions = {
  /** Hold the file alone: opening it while another connection holds it throws `onLocked()`. */
  singleOwner?: { onLocked: () => NerveError }
  /** Prepares the connection (pragmas such as max_page_count) before the first checkpoint can run. */
  configure?: (db: Database.Database) => void
  /** Page size of a new file (a power of two, 512–65536); a file that exists keeps the one it has. */
  pageSize?: number
  maxWalBytes?: number
  /** Past this much written since the WAL last restarted, it is restarted after the next background checkpoint. */
  restartWalBytes?: number
  /** How often a background checkpoint may start while commits keep coming (tests shorten it). */
  checkpointEveryMs?: number
}

/**
 * How often a checkpoint may start while commits keep coming. A checkpoint copies every page changed since
 * the one before, so a page that many commits rewrite (an index leaf, an incident's row) is copied once per
 * checkpoint: every 50 ms, the checkpointer thread used about a third of a core under the pipeline bench;
 * every second, a twentieth. The WAL grows by what a second of commits writes (maxWalBytes still bounds it).
 */
const defaultCheckpointEveryMs = 1000
const defaultMaxWalBytes = 64 * 1024 * 1024
/**
 * Past this much written since the WAL last restarted, it is restarted after the next background checkpoint
 * has finished. Each restart holds the writer for one checkpoint (mostly its two fsyncs), so not too often:
 * about every 3 s at 12 MB/s.
 */
const defaultRestartWalBytes = 32 * 1024 * 1024

export function openSqliteFile(file: string, options: SqliteFileOptions = {}): SqliteFile {
  const restartWalBytes = options.restartWalBytes ?? defaultRestartWalBytes
  const checkpointEveryMs = options.checkpointEveryMs ?? defaultCheckpointEveryMs
  const maxWalBytes = options.maxWalBytes ?? defaultMaxWalBytes
  const lock = options.singleOwner ? holdLock(`${file}-lock`, options.singleOwner.onLocked) : undefined
  let db: Database.Database
  try {
    db = new Database(file, { timeout: 0 })
    // Only a file with no page yet takes it (before WAL mode writes the header); others keep their own.
    if (options.pageSize !== undefined) db.pragma(`page_size = ${options.pageSize}`)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma('wal_autocheckpoint = 0')
    // A restarted WAL is written over from its beginning; only a WAL past maxWalBytes (checkpoints behind)
    // gives back the disk space it took.
    db.pragma(`journal_size_limit = ${maxWalBytes}`)
    options.configure?.(db)
  } catch (err) {
    lock?.close()
    throw err
  }
  /** A WAL frame: a page and its 24-byte header; the file starts with a 32-byte header. */
  const frameBytes = (db.pragma('page_size', { simple: true }) as number) + 24
  const checkpoints = sharedCheckpointer().attach(file)

  // The WAL file exists once a transaction was written; any descriptor of it syncs its data.
  let walFd: number | undefined
  const walDescriptor = () => {
    walFd ??= openSync(`${file}-wal`, 'r+')
    return walFd
  }
  const fdatasyncWal = () =>
    new Promise<void>((resolve, reject) => {
      let fd: number
      try {
        fd = walDescriptor()
      } catch (err) {
        return reject(err)
      }
      fdatasync(fd, (err) => (err ? reject(err) : resolve()))
    })

  let lastCheckpoint = 0
  /** A background checkpoint found more than restartWalBytes written since the WAL restarted, and has finished. */
  let caughtUp = false
  const syncOnce = async () => {
    await fdatasyncWal()
    const size = fstatSync(walDescriptor()).size
    if (size > maxWalBytes || caughtUp) {
      caughtUp = false
      await checkpoints.run()
      lastCheckpoint = Date.now()
    } else if (Date.now() - lastCheckpoint >= checkpointEveryMs) {
      lastCheckpoint = Date.now()
      // The file's size says nothing here: a restarted WAL is written over from its beginning.
      checkpoints.start()?.then(
        (frames) => {
          if (32 + frames * frameBytes > restartWalBytes) caughtUp = true
        },
        () => {},
      )
    }
  }
  // One fdatasync at a time: callers that arrive while one runs share the next, which starts when it ends
  // and so covers every commit they made (one syscall and one thread-pool round trip for all of them).
  let syncing: Promise<void> | undefined
  let queued: Promise<void> | undefined
  const sync = (): Promise<void> => {
    if (!syncing) {
      syncing = syncOnce().finally(() => {
        syncing = undefined
      })
      return syncing
    }
    queued ??= syncing
      .catch(() => {})
      .then(() => {
        queued = undefined
        return sync()
      })
    return queued
  }

  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      await checkpoints.detach()
      if (walFd !== undefined) closeSync(walFd)
      db.close()
      lock?.close()
    })()
    return closing
  }

  return { db, file, sync, close }
}

/** An exclusive lock held by a tiny SQLite database (released by the OS if the process dies). */
function holdLock(file: string, onLocked: () => NerveError): Database.Database {
  const lock = new Database(file, { timeout: 0 })
  try {
    lock.pragma('locking_mode = EXCLUSIVE')
    lock.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS owner (pid INTEGER); COMMIT;')
    return lock
  } catch (err) {
    lock.close()
    if ((err as { code?: unknown }).code === 'SQLITE_BUSY') throw onLocked()
    throw err
  }
}

type Checkpoints = {
  /**
   * Starts a checkpoint unless one is running (then undefined); resolves when it has finished, to the frames
   * the WAL held since its last restart.
   */
  start(): Promise<number> | undefined
  /** Resolves when a checkpoint started now has finished. */
  run(): Promise<number>
  detach(): Promise<void>
}

/** `frames`: of a checkpoint, the frames the WAL held since its last restart. */
type Reply = { id: number; ok: boolean; frames?: number; error?: string }

/**
 * One checkpointer thread per isolate that opens files (the main thread, the correlate and store threads),
 * for every file it opens; started with its first file, ended with its last; unref'd, so it never keeps
 * nerve alive.
 */
let checkpointer: ReturnType<typeof createCheckpointer> | undefined
const sharedCheckpointer = () => {
  checkpointer ??= createCheckpointer()
  return checkpointer
}

function createCheckpointer() {
  let worker: Worker | undefined
  let attached = 0
  let nextId = 0
  const waiting = new Map<number, { resolve(frames: number): void; reject(err: Error): void }>()

  const ensureWorker = () => {
    if (worker) return worker
    const w = new Worker(new URL('./sqlite-checkpointer.worker.mjs', import.meta.url))
    w.unref()
    w.on('message', (reply: Reply) => {
      const waiter = waiting.get(reply.id)
      waiting.delete(reply.id)
      if (reply.ok) waiter?.resolve(reply.frames ?? 0)
      else waiter?.reject(new Error(reply.error))
    })
    w.on('error', (err) => {
      for (const waiter of waiting.values()) waiter.reject(err)
      waiting.clear()
      worker = undefined
    })
    worker = w
    return w
  }

  const ask = (message: { type: 'checkpoint' | 'detach'; file: string }): Promise<number> =>
    new Promise((resolve, reject) => {
      const id = nextId++
      waiting.set(id, { resolve, reject })
      ensureWorker().postMessage({ ...message, id })
    })

  const attach = (file: string): Checkpoints => {
    attached++
    // The thread starts with the first file, as nerve starts, not at the first sync: a worker thread's start
    // (40-80 ms of CPU, its isolate and module loading) then does not fall on the first commits.
    ensureWorker()
    let running: Promise<number> | undefined
    /** The thread holds a connection to the file once asked for a checkpoint of it. */
    let connected = false
    const run = (): Promise<number> => {
      connected = true
      const next = (running ?? Promise.resolve(0)).then(() => ask({ type: 'checkpoint', file }))
      const tracked = next.finally(() => {
        if (running === tracked) running = undefined
      })
      running = tracked
      return tracked
    }
    return {
      start: () => {
        if (running) return undefined
        const pass = run()
        // A failed background checkpoint is retried by the next one; the WAL keeps every commit meanwhile.
        pass.catch(() => {})
        return pass
      },
      run,
      detach: async () => {
        await running?.catch(() => {})
        // A file closed before its first checkpoint (a command that only reads) waits for no reply.
        if (worker && connected) await ask({ type: 'detach', file })
        attached--
        if (attached === 0 && worker) {
          const w = worker
          worker = undefined
          await w.terminate()
        }
      },
    }
  }

  return { attach }
}
