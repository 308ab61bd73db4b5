// The embedded store's reader thread (store-reader-thread.ts): the read API's queries run here (the
// correlation store's and the rejected store's), on read-only connections of their own, so that a list no index serves (a rule, a score, a revoke status over a
// million correlations: seconds of SQLite) never holds the main thread, which accepts ingest. Each message
// is one read (a route and its query); the reply is the answer's status and its JSON as bytes, built here, so
// the main thread neither parses records nor serializes the page. It is handed one read at a time (the
// others wait on the main thread, where a read whose client left is dropped). A read runs in steps
// (stepped-scan.ts), all in one read transaction, so that its page and its total are of one snapshot of
// the store however the writer commits meanwhile; between steps it looks at the stop flag the main thread
// sets past the time limit, and a stopped read ends there.
// A worker does not inherit tsx's loader from the main thread: it registers it, then loads the reads.
import { join } from 'node:path'
import { parentPort, workerData } from 'node:worker_threads'
import { register } from 'tsx/esm/api'

register()
const { nameThisThread } = await import('../runtime/thread-name.ts')
nameThisThread('nerve-reader')
const { default: Database } = await import('better-sqlite3')
const { createStoreReads } = await import('./store-reads.ts')
const { answerStoreRead } = await import('./store-api.ts')
const { answerRejectedRead, createRejectedReads, rejectedReadUrls } = await import('./rejected-reads.ts')
const { errorCodeOf, NerveError } = await import('../runtime/errors.ts')

// The id of the read the main thread wants stopped (store-reader-thread.ts), and the one running here.
const stop = new Int32Array(workerData.stop)
let current = -1
const checkStop = () => {
  if (Atomics.load(stop, 0) === current)
    throw new NerveError('SINK_UNAVAILABLE', 'The read was stopped at its time limit.')
}
const steps = { checkStop, stepRows: workerData.stepRows }

// The writer thread made the file and its WAL; this connection only reads (WAL: each commit is seen at once).
const db = new Database(join(workerData.dataDir, 'store.sqlite'), { readonly: true, fileMustExist: true })
const reads = createStoreReads(db, steps)
// rejected.sqlite (dead letters, late events) is made by the rejected store on the main thread: opened at
// its first read, read-only as well.
let rejected
let rejectedReads
const openRejected = () => {
  rejected ??= new Database(join(workerData.dataDir, 'rejected.sqlite'), {
    readonly: true,
    fileMustExist: true,
  })
  rejectedReads ??= createRejectedReads(rejected, steps)
  return rejected
}
// One read transaction per answer: every statement of it reads the same snapshot.
const answer = (url, read) =>
  rejectedReadUrls.includes(url)
    ? openRejected().transaction(() => answerRejectedRead(rejectedReads, url, read))()
    : db.transaction(() => answerStoreRead(reads, url, read))()
const textEncoder = new TextEncoder()
parentPort.postMessage({ ready: true })

parentPort.on('message', (m) => {
  if (m.type === 'close') {
    db.close()
    rejected?.close()
    parentPort.postMessage({ id: m.id, ok: true })
    parentPort.close()
    return
  }
  current = m.id
  try {
    const res = answer(m.url, m.read)
    // As UTF-8 bytes whose memory moves to the main thread (transferred, not copied): a page of 1,000 dead
    // letters is 16 MB, which as a string the main thread copied in and encoded again for the socket.
    const bytes = textEncoder.encode(JSON.stringify(res.body))
    parentPort.postMessage({ id: m.id, ok: true, status: res.status, bytes }, [bytes.buffer])
  } catch (err) {
    const { message, details } = err ?? {}
    parentPort.postMessage({
      id: m.id,
      ok: false,
      code: errorCodeOf(err),
      message: String(message ?? err),
      details,
    })
  }
})
