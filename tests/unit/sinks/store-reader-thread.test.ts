// `nerve run` answers the store's read API from a worker thread of its own (store-reader-thread.ts), so that
// a read's SQLite work, which grows with the store, never holds the main thread that accepts ingest. Its
// answers are those of the store read in place: the same pages, totals and cursors, the same 400 naming
// each bad parameter, the same 404, the same headers; and a read sees each write as soon as it is committed.
import { readdirSync, readFileSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { DeadLetter } from '../../../bus/topics.ts'
import { NerveError } from '../../../runtime/errors.ts'
import { createHttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { RevokeOutcome } from '../../../schemas/types.ts'
import { createRejectedStore, type RejectedStore } from '../../../sinks/rejected-store.ts'
import {
  maxReadsPerConnection,
  maxWaitingReads,
  type StoreReaderThread,
  startStoreReaderThread,
} from '../../../sinks/store-reader-thread.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { edgeEvent } from '../correlate/sample-events.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { closeStores, openStore } from './store-harness.ts'

const readers: StoreReaderThread[] = []
const routesOf = new Map<string, StoreReaderThread['routes']>()
const rejectedStores: RejectedStore[] = []
afterEach(async () => {
  vi.useRealTimers()
  vi.restoreAllMocks()
  for (const r of readers.splice(0)) await r.close()
  for (const r of rejectedStores.splice(0)) await r.close()
  await closeStores()
})

async function openReader(
  dataDir: string,
  opts: { timeLimitMs?: number; stopGraceMs?: number; stepRows?: number } = {},
) {
  const reader = await startStoreReaderThread({ data_dir: dataDir }, opts)
  readers.push(reader)
  routesOf.set(dataDir, reader.routes)
  const rt = createTestRuntime()
  const server = createHttpServer(loadConfig().http, { log: rt.log, metrics: rt.metrics, ingestToken: 'x' })
  server.addRoutes(reader.routes)
  return Object.assign((url: string) => server.inject({ method: 'GET', url }), { rt })
}

describe('the store reader thread', () => {
  it('answers every read as the store does in place, and sees each commit at once', async () => {
    const { store, dataDir, get } = openStore()
    const shell = { id: 'shell-then-secrets', severity: 90, revoke: true }
    const correlations = Array.from({ length: 30 }, (_, n) =>
      makeCorrelation(n, { score: 50 + n, ...(n % 3 === 0 ? { rule: shell } : {}) }),
    )
    store.writeCorrelations(correlations)
    const b = correlations[3]
    const sent: RevokeOutcome = {
      id: 'rvk_b:1',
      decision_id: 'rvk_b',
      time: (b?.time ?? 0) + 1000,
      correlation_id: b?.id ?? '',
      incident_id: b?.incident.id ?? '',
      agent_id: 'data-cleaner',
      status: 'sent',
      reason: 'delivered',
      attempts: 1,
    }
    store.writeOutcomes([sent])
    const read = await openReader(dataDir)

    const urls = [
      '/v1/correlations',
      '/v1/correlations?rule=shell-then-secrets&limit=3',
      '/v1/correlations?min_score=70&limit=4',
      '/v1/correlations?status=sent',
      '/v1/correlations?status=none&since=2026-11-25T16:00:10Z&until=1795622425000',
      '/v1/incidents?limit=7&min_score=60',
      '/v1/incidents?rule=Unexpected%20outbound%20connection%20destination&limit=2',
      `/v1/incidents/${b?.incident.id}?correlations=5`,
      '/v1/incidents/nope',
      '/v1/revokes?status=sent',
      '/v1/correlations?min_score=101&since=yesterday&color=red',
      '/v1/correlations?cursor=abc',
    ]
    for (const url of urls) {
      const inPlace = await get(url)
      const res = await read(url)
      expect(res.statusCode, url).toBe(inPlace.status)
      expect(res.json(), url).toEqual(inPlace.body)
      expect(res.headers['content-type']).toMatch(/^application\/json/)
      if (res.statusCode !== 200) continue
      expect(res.headers['cache-control']).toBe('no-store')
      expect(res.headers['x-content-type-options']).toBe('nosniff')
    }
    expect((await read('/v1/incidents/nope')).statusCode).toBe(404)
    expect((await read('/v1/correlations?limit=0')).json().error.details).toEqual([
      { path: 'limit', message: 'must be an integer from 1 to 1000' },
    ])

    // The cursor it hands out leads on through every correlation, with the in-place store's pages.
    const ids: string[] = []
    let url = '/v1/correlations?min_score=60&limit=7'
    for (;;) {
      const page = (await read(url)).json()
      expect(page).toEqual((await get(url)).body)
      ids.push(...page.items.map((c: { id: string }) => c.id))
      if (!page.next) break
      url = `/v1/correlations?min_score=60&limit=7&cursor=${page.next}`
    }
    expect(ids).toHaveLength(20)

    store.writeCorrelations([makeCorrelation(100, { score: 99 })])
    expect((await read('/v1/correlations?min_score=99')).json()).toMatchObject({ total: 1, count: 1 })
  })

  it(`refuses a read at once, 429 (SATURATED), while ${maxWaitingReads} wait for the thread`, async () => {
    const { store, dataDir } = openStore()
    store.writeCorrelations([makeCorrelation(0)])
    await openReader(dataDir)
    const route = routesOf.get(dataDir)?.find((r) => r.url === '/v1/correlations')
    const request = { body: Buffer.alloc(0), headers: {}, query: { rule: 'nope' }, receivedAt: 0 }
    // Asked in one go, before the thread can answer any: the ones past the bound are refused.
    const answers = await Promise.allSettled(
      Array.from({ length: maxWaitingReads + 2 }, () => route?.handle(request)),
    )
    const refused = answers.flatMap((a) =>
      a.status === 'fulfilled' && a.value?.status === 429 ? [a.value] : [],
    )
    expect(refused).toHaveLength(2)
    for (const res of refused) {
      expect(res.body).toMatchObject({ error: { code: 'SATURATED' } })
      // Places free only as reads finish (up to the time limit): the 503's 5 s, not 1 s.
      expect(res.headers?.['retry-after']).toBe('5')
    }
    expect(
      answers.slice(0, maxWaitingReads).every((a) => a.status === 'fulfilled' && a.value?.status === 200),
    ).toBe(true)
    // Once they are answered, reads are taken again.
    expect(await route?.handle(request)).toMatchObject({ status: 200 })
  })

  it(`lets one connection hold ${maxReadsPerConnection} of the ${maxWaitingReads} places, not all`, async () => {
    const { store, dataDir } = openStore()
    store.writeCorrelations([makeCorrelation(0)])
    await openReader(dataDir)
    const route = routesOf.get(dataDir)?.find((r) => r.url === '/v1/correlations')
    const on = (connection: object) => ({ ...slowRead(), connection })
    // One client pipelines reads on one connection, asked in one go before the thread answers any.
    const greedy = {}
    const answers = await Promise.allSettled([
      ...Array.from({ length: maxReadsPerConnection + 2 }, () => route?.handle(on(greedy))),
      route?.handle(on({})),
    ])
    const codes = answers.map((a) => (a.status === 'rejected' ? a.reason.code : a.value?.status))
    expect(codes).toEqual([...Array(maxReadsPerConnection).fill(200), 429, 429, 200])
    const refused = answers[maxReadsPerConnection]
    expect(refused?.status === 'fulfilled' && refused.value?.headers?.['retry-after']).toBe('5')
    // Its places are its own again once answered.
    expect(await route?.handle(on(greedy))).toMatchObject({ status: 200 })
  })

  it('answers dead letters and late events as the rejected store does in place', async () => {
    const { dataDir } = openStore()
    const rt = createTestRuntime()
    const rejected = createRejectedStore({ data_dir: dataDir }, rt)
    rejectedStores.push(rejected)
    // Real Falco alerts the receiver refused (as a malformed item is kept: its original text), and late events.
    const alerts = readFileSync('tests/fixtures/falco/falco.ndjson', 'utf8').split('\n').filter(Boolean)
    const t0 = Date.UTC(2026, 10, 25, 16, 0, 0)
    const letters: DeadLetter[] = Array.from({ length: 12 }, (_, n) => ({
      component: n % 3 === 0 ? 'cloudtrail_receiver' : 'falco_receiver',
      error_code: 'INPUT_INVALID',
      reason: `Item ${n} is not a Falco alert.`,
      problems: [{ path: '/priority', message: 'must be equal to one of the allowed values' }],
      index: n,
      received_at: t0 + n * 1000,
      original: alerts[n % alerts.length] ?? '',
      original_encoding: 'utf8',
    }))
    await rejected.keepDeadLetters(letters)
    await rejected.keepLateEvents(
      Array.from({ length: 5 }, (_, n) => ({
        event: edgeEvent({ id: `late-${n}`, time: t0 + n * 1000, agent: n % 2 ? 'default/alpine' : 'etl' }),
        stream_time: t0 + 3_600_000,
        lag_ms: 1000,
        reason: 'edge event older than the stream time minus after and grace',
      })),
    )
    const server = createHttpServer(loadConfig().http, { log: rt.log, metrics: rt.metrics, ingestToken: 'x' })
    server.addRoutes(rejected.routes)
    const read = await openReader(dataDir)

    const urls = [
      '/v1/dead-letters',
      '/v1/dead-letters?component=falco_receiver&limit=3',
      '/v1/dead-letters?error_code=INPUT_INVALID&since=2026-11-25T16:00:04Z&until=1795622410000',
      '/v1/dead-letters?component=nope',
      '/v1/dead-letters?limit=0&agent=x',
      '/v1/late-events?agent=etl',
      '/v1/late-events?limit=2',
      '/v1/late-events?cursor=abc',
    ]
    for (const url of urls) {
      const inPlace = await server.inject({ method: 'GET', url })
      const res = await read(url)
      expect(res.statusCode, url).toBe(inPlace.statusCode)
      expect(res.json(), url).toEqual(inPlace.json())
      if (res.statusCode === 200) expect(res.headers['cache-control']).toBe('no-store')
    }
    // Its cursor leads on through every falco_receiver dead letter, with the in-place store's pages.
    const indexes: number[] = []
    let url = '/v1/dead-letters?component=falco_receiver&limit=3'
    for (;;) {
      const page = (await read(url)).json()
      expect(page).toEqual((await server.inject({ method: 'GET', url })).json())
      indexes.push(...page.items.map((d: DeadLetter) => d.index))
      if (!page.next) break
      url = `/v1/dead-letters?component=falco_receiver&limit=3&cursor=${page.next}`
    }
    expect(indexes).toEqual([11, 10, 8, 7, 5, 4, 2, 1])
    // It sees each new dead letter as soon as it is stored.
    await rejected.keepDeadLetters([{ ...(letters[0] as DeadLetter), index: 99, received_at: t0 + 99_000 }])
    expect((await read('/v1/dead-letters?limit=1')).json()).toMatchObject({
      total: 13,
      items: [{ index: 99 }],
    })
  })
})

describe('the store reader thread, while the writer writes', () => {
  it('answers each page and its total from one snapshot of the store', async () => {
    const { dataDir } = openStore()
    const rt = createTestRuntime()
    const rejected = createRejectedStore({ data_dir: dataDir }, rt)
    rejectedStores.push(rejected)
    const alert = readFileSync('tests/fixtures/falco/falco.ndjson', 'utf8').split('\n')[0] ?? ''
    const t0 = Date.UTC(2026, 11, 7)
    let written = 0
    /** Dead letters numbered in the order written: the newest one's number is the total less one. */
    const write = (n: number) =>
      rejected.writeDeadLetters(
        Array.from({ length: n }, () => {
          const index = written++
          return {
            component: 'falco_receiver',
            error_code: 'INPUT_INVALID',
            reason: 'Not a Falco alert.',
            index,
            received_at: t0 + index,
            original: alert,
            original_encoding: 'utf8',
          } satisfies DeadLetter
        }),
      )
    write(1000)
    const read = await openReader(dataDir, { stepRows: 64 })
    const mismatched: string[] = []
    for (let i = 0; i < 40; i++) {
      let answered = false
      const page = read('/v1/dead-letters?limit=500').finally(() => {
        answered = true
      })
      // Batches of 50 committed while the read runs.
      while (!answered) {
        write(50)
        await new Promise((resolve) => setImmediate(resolve))
      }
      const { total, items } = (await page).json()
      if (total !== items[0].index + 1) mismatched.push(`total ${total}, newest ${items[0].index}`)
    }
    expect(mismatched).toEqual([])
  })
})

/** A filtered correlations read (no index serves `rule`), as the route gets it; `signal` as the server sets it. */
const slowRead = (signal?: AbortSignal) => ({
  body: Buffer.alloc(0),
  headers: {},
  query: { rule: 'shell-then-secrets' },
  receivedAt: 0,
  ...(signal ? { signal } : {}),
})

/** Reads the reader handed to a thread (the messages that carry a route), and to how many threads. */
function countReadsRun() {
  const posted = vi.spyOn(Worker.prototype, 'postMessage')
  const reads = () =>
    posted.mock.calls.flatMap(([m], n) =>
      typeof (m as { url?: unknown }).url === 'string' ? [posted.mock.contexts[n]] : [],
    )
  return Object.assign(() => reads().length, { threads: () => new Set(reads()).size })
}

/** Threads of this process named as the reader names its own (Linux; elsewhere the test cannot tell). */
function readerThreads(): number {
  return readdirSync('/proc/self/task').filter(
    (t) => readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === 'nerve-reader',
  ).length
}

async function correlationsRoute(opts: Parameters<typeof openReader>[1] = {}) {
  const { store, dataDir } = openStore()
  store.writeCorrelations(
    Array.from({ length: 50 }, (_, n) =>
      makeCorrelation(n, n % 5 ? {} : { rule: { id: 'shell-then-secrets', severity: 90, revoke: true } }),
    ),
  )
  await openReader(dataDir, opts)
  const reader = readers.at(-1) as StoreReaderThread
  const route = routesOf.get(dataDir)?.find((r) => r.url === '/v1/correlations')
  if (!route) throw new Error('no /v1/correlations route')
  return { reader, route }
}

describe('the store reader thread, when a read is not wanted or runs too long', () => {
  it('never runs a waiting read whose client closed its connection', async () => {
    const { route } = await correlationsRoute()
    const readsRun = countReadsRun()
    const left = new AbortController()
    // Asked in one go: the first runs, the others wait; the client of the second leaves before its turn.
    const first = route.handle(slowRead())
    const gone = route.handle(slowRead(left.signal))
    const third = route.handle(slowRead())
    left.abort(new NerveError('SINK_UNAVAILABLE', 'The client closed its connection.'))
    await expect(gone).rejects.toMatchObject({ code: 'SINK_UNAVAILABLE' })
    expect((await first).status).toBe(200)
    expect((await third).status).toBe(200)
    expect(readsRun()).toBe(2)
    // A read whose client already left is not queued at all.
    await expect(route.handle(slowRead(left.signal))).rejects.toMatchObject({ code: 'SINK_UNAVAILABLE' })
    expect(readsRun()).toBe(2)
  })

  it('stops a read past the time limit (503) and answers the reads behind it on the same thread', async () => {
    const { route } = await correlationsRoute({ timeLimitMs: 50, stepRows: 1 })
    const terminated = vi.spyOn(Worker.prototype, 'terminate')
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const post = Worker.prototype.postMessage
    let stopping = true
    vi.spyOn(Worker.prototype, 'postMessage').mockImplementation(function (
      this: Worker,
      ...args: Parameters<Worker['postMessage']>
    ) {
      post.apply(this, args)
      // The limit passes as soon as a read is handed over, before its answer can come in (a message).
      if (stopping) queueMicrotask(() => vi.advanceTimersByTime(50))
    })
    const readsRun = countReadsRun()
    // Each read is asked once the one before has been stopped: one at a time, as the reviewer asked them.
    for (let i = 0; i < 6; i++) {
      const err = await route.handle(slowRead()).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(NerveError)
      expect(err).toMatchObject({ code: 'SINK_UNAVAILABLE', retriable: true })
      expect((err as Error).message).toMatch(/longer than 0\.05 s.*narrow its filter/)
    }
    stopping = false
    expect((await route.handle(slowRead())).status).toBe(200)
    expect(readsRun()).toBe(7)
    // No thread was ended, none started: the stopped reads ended at a step, and one thread is left reading.
    expect(terminated).not.toHaveBeenCalled()
    expect(readsRun.threads()).toBe(1)
    expect(readerThreads()).toBe(1)
  })

  it('ends a thread that does not answer a stop, and starts the next only once it has exited', async () => {
    // The grace shorter than the limit, as by default (5 s, 30 s): the read behind waits it out.
    const { route } = await correlationsRoute({ timeLimitMs: 50, stopGraceMs: 40 })
    const events: string[] = []
    const post = Worker.prototype.postMessage
    const posted = vi.spyOn(Worker.prototype, 'postMessage')
    // The first read never reaches its thread: the thread cannot answer it, nor its stop.
    posted.mockImplementationOnce(function (this: Worker) {
      this.once('exit', () => events.push('exit'))
    })
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const stuck = route.handle(slowRead())
    vi.advanceTimersByTime(50)
    await expect(stuck).rejects.toMatchObject({ code: 'SINK_UNAVAILABLE' })
    const behind = route.handle(slowRead())
    // The thread has not answered the stop: the read behind waits, and no other thread starts yet.
    expect(posted).toHaveBeenCalledTimes(1)
    vi.advanceTimersByTime(40)
    posted.mockImplementation(function (this: Worker, ...args: Parameters<Worker['postMessage']>) {
      events.push('read posted')
      return post.apply(this, args)
    })
    expect((await behind).status).toBe(200)
    expect(events).toEqual(['exit', 'read posted'])
    expect(readerThreads()).toBe(1)
  })

  it('answers a read 503 once it has waited the time limit for the thread, and counts it', async () => {
    const { store, dataDir } = openStore()
    store.writeCorrelations([makeCorrelation(0)])
    const get = await openReader(dataDir, { timeLimitMs: 50, stopGraceMs: 500 })
    // The first read never reaches its thread, which cannot answer it nor its stop: it holds the thread
    // (stopped, answered 503) for the whole grace, and the read behind it waits.
    vi.spyOn(Worker.prototype, 'postMessage').mockImplementationOnce(() => {})
    const stuck = get('/v1/correlations?rule=nope')
    const behind = get('/v1/correlations')
    expect((await stuck).statusCode).toBe(503)
    const res = await behind
    expect(res.statusCode).toBe(503)
    expect(res.headers['retry-after']).toBe('5')
    expect(res.json().error).toMatchObject({ code: 'SINK_UNAVAILABLE' })
    expect(res.json().error.message).toMatch(/waited 0\.05 s/)
    expect(
      await get.rt.metricValue('nerve_http_requests_total', { route: '/v1/correlations', status: '503' }),
    ).toBe(2)
  })

  it(`holds the bound of ${maxWaitingReads} reads while a stopped read ends`, async () => {
    const { route } = await correlationsRoute({ timeLimitMs: 50 })
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const late = route.handle(slowRead())
    vi.advanceTimersByTime(50)
    await expect(late).rejects.toMatchObject({ code: 'SINK_UNAVAILABLE' })
    // The stopped read keeps its place until its thread says it stopped: all these are asked before that.
    const answers = await Promise.allSettled(
      Array.from({ length: maxWaitingReads + 2 }, () => route.handle(slowRead())),
    )
    const status = answers.map((a) => (a.status === 'fulfilled' ? a.value.status : a.reason.code))
    expect(status.slice(maxWaitingReads - 1)).toEqual([429, 429, 429])
    expect(status.slice(0, maxWaitingReads - 1).every((s) => s === 200)).toBe(true)
  })

  it('answers the waiting reads 503 on close rather than run them, and the running one in full', async () => {
    const { reader, route } = await correlationsRoute()
    const readsRun = countReadsRun()
    const running = route.handle(slowRead())
    const waiting = [route.handle(slowRead()), route.handle(slowRead())]
    const closed = reader.close()
    for (const w of waiting) await expect(w).rejects.toMatchObject({ code: 'SINK_UNAVAILABLE' })
    expect((await running).status).toBe(200)
    await closed
    expect(readsRun()).toBe(1)
    await expect(route.handle(slowRead())).rejects.toMatchObject({ code: 'SINK_UNAVAILABLE' })
  })
})
