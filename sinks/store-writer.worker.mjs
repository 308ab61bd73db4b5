// The embedded store's writer thread (store-writer-thread.ts): the store's SQLite transactions and their
// fdatasync run here, on the second core, while the main thread keeps the HTTP server, the bus and the
// correlator. Each message is a batch (correlations or revoke outcomes) or a retention sweep; the reply
// comes once the writes are on disk, and only then does the main thread let the bus commit the batch.
// Batches of correlations that arrived together (the partitions' consumers run side by side) are written
// in one transaction; if it fails, each is written alone, so only a batch that cannot be written fails.
// Given the embedded bus's file (busFile), a batch may come as a range of a topic's partition: the writer
// reads its correlations' texts from the file on a read-only connection of its own (bus-port.ts), and a range
// it cannot read whole fails, so the bus delivers it again rather than the store missing a correlation.
// Correlation commits are at least commitIntervalMs apart (sinks.store.commit_interval): under load, what the
// consumers hand over meanwhile shares one commit, so each commit's pages (the incidents' rows, the agent
// index's leaves: one page per correlation for commits of a few dozen) serve more correlations; an idle
// writer commits at once. Once drained (the consumers stop at shutdown), it commits at once from then on and
// writes what waits now: the bus's consumers finish their batches in flight without waiting out the interval.
// A worker does not inherit tsx's loader from the main thread: it registers it, then loads the store.
import { parentPort, workerData } from 'node:worker_threads'
import { register } from 'tsx/esm/api'

register()
const { nameThisThread } = await import('../runtime/thread-name.ts')
nameThisThread('nerve-store')
const { createCorrelationStore } = await import('./correlation-store.ts')
const { createMetrics } = await import('../runtime/metrics.ts')
const { NerveError, sqliteCodeOf } = await import('../runtime/errors.ts')
const { openRecordReader, storageError } = await import('../bus/bus-port.ts')
const { storeErrorCode } = await import('./store-writer-replies.ts')

// The writes' counters are kept by the main thread, from the replies: this registry is never served.
// An index a store of an earlier version lacks is built when the main thread asks (workerData.buildIndexes,
// or a message's buildIndexes): once the thread has said it is ready, and after a failure before a write
// once the main thread's back-off has passed (it keeps it, so that it outlives this thread). Each build is
// told to the main thread before and after, or with how long it ran when it failed (another connection
// holds the write lock, a full disk); the writes asked meanwhile wait for it, and after a failure the
// thread writes on and the reads use the older index.
// A store it cannot open ends the thread: better-sqlite3's SqliteError crosses to the main thread as its
// code alone (it is no Error to the structured clone), so it is thrown again as an Error that keeps its text.
let store
try {
  store = createCorrelationStore(
    { data_dir: workerData.dataDir },
    {
      metrics: createMetrics(),
      onIndexBuild: (build) => parentPort.postMessage({ indexBuild: build }),
      deferIndexes: true,
      // On the embedded bus the correlations are read from its file, as the correlate stage wrote them.
      textsFromNerve: workerData.busFile !== undefined,
    },
  )
} catch (err) {
  throw Object.assign(new Error(String(err?.message ?? err)), { code: err?.code })
}

/** Whether the main thread asked for the build and it was not tried since. */
let buildAsked = workerData.buildIndexes === true
const buildIndexes = () => {
  if (!buildAsked) return
  buildAsked = false
  if (store.buildIndexes()) parentPort.postMessage({ indexReady: true })
}

/** Opened at the first range (the bus file exists by then: the bus delivered from it). */
let reader
/** The JSON texts of a range's correlations, as the bus stored them; the bus's failure, not the store's. */
const readRange = (m) => {
  const { partition, from, to } = m.range
  let records
  try {
    reader ??= openRecordReader(workerData.busFile)
    records = reader.read(m.topic, partition, from, to)
  } catch (err) {
    throw storageError(err, 'reading correlations')
  }
  if (records.length !== to - from) {
    const message = `The bus file holds ${records.length} of the ${to - from} correlations to store.`
    throw new NerveError('BUS_UNAVAILABLE', message, { retriable: true })
  }
  return records.map((r) => r.value)
}

const work = {
  correlations: (m) => store.writeCorrelations(m.batch),
  outcomes: (m) => store.writeOutcomes(m.batch),
  retention: (m) => store.deleteBefore(m.cutoff),
}

const failed = (m, err) =>
  parentPort.postMessage({
    id: m.id,
    ok: false,
    code: storeErrorCode(err),
    // For the store's readiness and the log lines of the write that failed.
    sqliteCode: sqliteCodeOf(err),
    message: String(err?.message ?? err),
  })

const answer = async (m) => {
  buildIndexes()
  try {
    const result = work[m.type](m)
    await store.sync()
    parentPort.postMessage({ id: m.id, ok: true, result })
  } catch (err) {
    failed(m, err)
  }
}

/** Correlation batches received since the last write, written together once the messages are read. */
let arrived = []
/** Least ms between two writes of correlations: 0 once drained. */
let commitIntervalMs = workerData.commitIntervalMs
/** When the last write of correlations started (performance.now()). */
let lastWrite = Number.NEGATIVE_INFINITY
/** Cancels the scheduled write (close writes what arrived at once). */
let cancelWrite = () => {}
/** Writes what arrived once the messages are read, and no sooner than commitIntervalMs after the last write. */
const scheduleWrite = () => {
  const wait = lastWrite + commitIntervalMs - performance.now()
  if (wait > 0) {
    // The config bounds commit_interval at 24d, within what setTimeout() arms (2^31 - 1 ms).
    const timer = setTimeout(writeArrived, wait)
    cancelWrite = () => clearTimeout(timer)
  } else {
    const immediate = setImmediate(writeArrived)
    cancelWrite = () => clearImmediate(immediate)
  }
}
const writeArrived = async () => {
  lastWrite = performance.now()
  const group = arrived
  arrived = []
  if (group.length === 0) return
  if (group.length === 1) return answer(group[0])
  buildIndexes()
  let results
  try {
    results = store.writeCorrelationBatches(group.map((m) => m.batch))
  } catch {
    for (const m of group) await answer(m)
    return
  }
  try {
    await store.sync()
    for (const [i, m] of group.entries()) parentPort.postMessage({ id: m.id, ok: true, result: results[i] })
  } catch (err) {
    for (const m of group) failed(m, err)
  }
}

parentPort.on('message', async (m) => {
  if (m.buildIndexes) buildAsked = true
  if (m.type === 'close') {
    cancelWrite()
    await writeArrived()
    reader?.close()
    await store.close()
    parentPort.postMessage({ id: m.id, ok: true })
    parentPort.close()
    return
  }
  if (m.type === 'drain') {
    commitIntervalMs = 0
    if (arrived.length > 0) {
      cancelWrite()
      await writeArrived()
    }
    parentPort.postMessage({ id: m.id, ok: true })
    return
  }
  if (m.type === 'correlations') {
    if (m.range) {
      try {
        m.batch = readRange(m)
      } catch (err) {
        failed(m, err)
        return
      }
    }
    arrived.push(m)
    if (arrived.length === 1) scheduleWrite()
    return
  }
  await answer(m)
})
parentPort.postMessage({ ready: true })
buildIndexes()
