// Worker thread of the revoke-latency bench: POSTs the background load (half Falco alerts of other pods,
// half read-only CloudTrail calls, none matching a rule) as JSON arrays of `batch` items, paced by elapsed
// time to `perSecond` events, never more than 16 requests in flight (a saturated nerve lowers the rate
// rather than piling up sockets). On 'stop' it waits for what is in flight and reports its counts and
// how long it was sending.
import { parentPort, workerData } from 'node:worker_threads'
import { noiseAlert, noiseRecord, postEvents } from './latency-events.ts'

const { base, token, perSecond, batch } = workerData as {
  base: string
  token: string
  perSecond: number
  batch: number
}

const post = (path: string, body: unknown) => postEvents(base, token, path, body)

let sent = 0
let failed = 0
const started = performance.now()
const inflight = new Set<Promise<void>>()
const timer = setInterval(() => {
  const due = Math.floor(((performance.now() - started) * perSecond) / 1000) - sent
  for (let left = due; left > 0 && inflight.size < 16; left -= batch) {
    const count = Math.min(left, batch)
    const falco = Math.floor(count / 2)
    const requests = [
      post(
        '/v1/falco',
        Array.from({ length: falco }, () => noiseAlert(sent++)),
      ),
      post(
        '/v1/cloudtrail',
        Array.from({ length: count - falco }, () => noiseRecord(sent++)),
      ),
    ]
    for (const request of requests) {
      const r = request.catch(() => {
        failed++
      })
      inflight.add(r)
      void r.finally(() => inflight.delete(r))
    }
  }
}, 10)

parentPort?.once('message', async () => {
  clearInterval(timer)
  const seconds = (performance.now() - started) / 1000
  await Promise.allSettled([...inflight])
  parentPort?.postMessage({ sent, failed, seconds })
})
