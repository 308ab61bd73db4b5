// Falcosidekick never retries and Falco's http_output ignores the status: while the bus is busy, /v1/falco
// spools to disk and answers 202, drains in order once the bus has room, survives a restart, and refuses
// (429) only when the spool's disk budget is spent, which /metrics and /readyz show.
import { execFile } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { deadLetterTopic, eventsTopic } from '../../../bus/topics.ts'
import type { Decoded } from '../../../ingest/decode-events.ts'
import { createFalcoSpool } from '../../../ingest/falco-spool.ts'
import { decodeSpooled } from '../../../ingest/falco-spool-file.ts'
import type { DecodedPublisher } from '../../../ingest/publish-decoded.ts'
import { NerveError } from '../../../runtime/errors.ts'
import { nextTurn } from '../../../runtime/next-turn.ts'
import type { NormalizedEvent } from '../../../schemas/types.ts'
import { gate } from '../../helpers/gate.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { auth, fixture, startHarness } from './ingest-harness.ts'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '../../..')
const alerts = fixture('falco/falco-website.ndjson').toString().trim().split('\n')
const post = (h: Awaited<ReturnType<typeof startHarness>>, line: string) =>
  h.server.inject({ method: 'POST', url: '/v1/falco', payload: line, headers: auth })
const spoolFiles = (dataDir: string) =>
  readdirSync(join(dataDir, 'falco-spool')).filter((f) => /\.(nd)?json$/.test(f))

describe('the Falco spool', () => {
  it('answers 202 while publishes wait at their cap, and drains in order once the bus has room', async () => {
    const h = await startHarness({ maxPending: 1, spoolAfterMs: 60_000 })
    const { held, release } = gate()
    h.bus.before = () => held
    const first = post(h, alerts[0] as string)
    await waitFor(() => h.ingest.readiness.ingest?.().detail, { what: 'the first publish to hold the cap' })
    const answers = []
    for (const line of alerts.slice(1, 4)) answers.push(await post(h, line))
    expect(answers.map((r) => r.statusCode)).toEqual([202, 202, 202])
    expect(answers.every((r) => r.json().spooled === true && r.json().accepted === 1)).toBe(true)
    expect(spoolFiles(h.dataDir)).toHaveLength(3)
    expect(await h.rt.metricValue('nerve_ingest_falco_spool_requests')).toBe(3)
    expect(h.ingest.readiness.ingest?.()).toMatchObject({ ok: true })
    expect(h.ingest.readiness.falco_spool?.()).toMatchObject({
      ok: true,
      detail: expect.stringContaining('3'),
    })

    h.bus.before = undefined
    release()
    expect((await first).statusCode).toBe(202)
    // A file is removed before its drain is counted: wait for the count, not only for the files to go.
    await waitFor(
      async () =>
        spoolFiles(h.dataDir).length === 0 &&
        (await h.rt.metricValue('nerve_ingest_falco_spool_drained_total')) === 3,
      { what: 'the spool to drain' },
    )
    const outputs = h.bus.records(eventsTopic).map((r) => (r.value as NormalizedEvent).edge?.output)
    const expected = alerts.slice(0, 4).map((l) => JSON.parse(l).output)
    expect(outputs).toEqual(expected)
    expect(await h.rt.metricValue('nerve_ingest_falco_spooled_total')).toBe(3)
    expect(await h.rt.metricValue('nerve_ingest_falco_spool_drained_total')).toBe(3)
    expect(await h.rt.metricValue('nerve_ingest_falco_spool_bytes')).toBe(0)
    await h.ingest.close()
  })

  it('spools while the bus refuses with a retriable error, and keeps the spool across a restart', async () => {
    const dataDir = tempDir('nerve-spool-restart')
    const down = await startHarness({ dataDir })
    down.bus.before = async () => {
      throw new NerveError('BUS_UNAVAILABLE', 'Kafka publish failed: Connection refused', { retriable: true })
    }
    for (const line of alerts.slice(0, 2)) expect((await post(down, line)).statusCode).toBe(202)
    expect(spoolFiles(dataDir)).toHaveLength(2)
    await down.ingest.close()

    const up = await startHarness({ dataDir })
    await waitFor(() => up.bus.records(eventsTopic).length === 2, { what: 'the restarted ingest to drain' })
    await waitFor(() => spoolFiles(dataDir).length === 0, { what: 'the spool files removed' })
    await up.ingest.close()
  })

  it('spools after a crash that left a half-written file behind, and removes that file', async () => {
    const dataDir = tempDir('nerve-spool-crash')
    mkdirSync(join(dataDir, 'falco-spool'), { recursive: true })
    // A crash between open() and rename(): the newest sequence number exists only as its .tmp.
    writeFileSync(join(dataDir, 'falco-spool', '0000000000000001.json.tmp'), '{"component":"falco_rec')
    const h = await startHarness({ dataDir })
    h.bus.before = async () => {
      throw new NerveError('BUS_UNAVAILABLE', 'Kafka publish failed: Connection refused', { retriable: true })
    }
    const res = await post(h, alerts[0] as string)
    expect(res.statusCode).toBe(202)
    expect(res.json()).toMatchObject({ spooled: true })
    expect(readdirSync(join(dataDir, 'falco-spool')).filter((f) => f.endsWith('.tmp'))).toEqual([])
    h.bus.before = undefined
    await waitFor(() => h.bus.records(eventsTopic).length === 1, { what: 'the spooled alert published' })
    await h.ingest.close()
  })

  it('spools a large body in parts and drains it whole after a restart: every event in order, the bad line dead-lettered', async () => {
    const dataDir = tempDir('nerve-spool-large')
    // 600 alerts of a few agents and rules: with the edge budget on, most would fold (agent-budget.test.ts).
    const down = await startHarness({ dataDir, agentBudget: 0 })
    down.bus.before = async () => {
      throw new NerveError('BUS_UNAVAILABLE', 'Kafka publish failed: Connection refused', { retriable: true })
    }
    const lines = Array.from({ length: 600 }, (_, i) => {
      const alert = JSON.parse(alerts[i % alerts.length] as string)
      alert.output = `${alert.output} #${i}`
      return JSON.stringify(alert)
    })
    lines.splice(300, 0, '{"rule": 42}')
    const res = await post(down, lines.join('\n'))
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ accepted: 600, rejected: 1, spooled: true })
    expect(spoolFiles(dataDir)).toEqual([expect.stringMatching(/^\d{16}\.ndjson$/)])
    await down.ingest.close()

    const up = await startHarness({ dataDir, agentBudget: 0 })
    await waitFor(() => spoolFiles(dataDir).length === 0, { what: 'the spool to drain' })
    const outputs = up.bus.records(eventsTopic).map((r) => (r.value as NormalizedEvent).edge?.output)
    expect(outputs).toEqual(lines.filter((_, i) => i !== 300).map((l) => JSON.parse(l).output))
    expect(up.bus.records(deadLetterTopic).map((r) => (r.value as { index: number }).index)).toEqual([300])
    await up.ingest.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('drains a request the previous version spooled as one JSON document', async () => {
    const dataDir = tempDir('nerve-spool-legacy')
    const down = await startHarness({ dataDir })
    down.bus.before = async () => {
      throw new NerveError('BUS_UNAVAILABLE', 'Kafka publish failed: Connection refused', { retriable: true })
    }
    expect((await post(down, alerts.slice(0, 3).join('\n'))).statusCode).toBe(202)
    await down.ingest.close()
    // The same request as the previous version wrote it: <seq>.json, the whole request in one document.
    const dir = join(dataDir, 'falco-spool')
    const [name] = spoolFiles(dataDir)
    const entry = await decodeSpooled(readFileSync(join(dir, name as string)), async () => {})
    unlinkSync(join(dir, name as string))
    writeFileSync(join(dir, '0000000000000007.json'), JSON.stringify(entry))

    const up = await startHarness({ dataDir })
    await waitFor(() => spoolFiles(dataDir).length === 0, { what: 'the old spool file to drain' })
    const outputs = up.bus.records(eventsTopic).map((r) => (r.value as NormalizedEvent).edge?.output)
    expect(outputs).toEqual(alerts.slice(0, 3).map((l) => JSON.parse(l).output))
    await up.ingest.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('starts and drains oldest first with more spooled requests than a call takes arguments', async () => {
    const dataDir = tempDir('nerve-spool-flood')
    const down = await startHarness({ dataDir })
    down.bus.before = async () => {
      throw new NerveError('BUS_UNAVAILABLE', 'Kafka publish failed: Connection refused', { retriable: true })
    }
    for (const line of alerts.slice(0, 2)) expect((await post(down, line)).statusCode).toBe(202)
    await down.ingest.close()
    // What a flood of one-alert requests leaves while the bus is down (512 MiB holds ~170,000 of them,
    // more than the ~125,000 arguments a call takes on the default stack); here they decode to nothing.
    // The spool starts in a process whose stack takes about 15,000 arguments to a call, so that 20,000
    // requests are as many too many: 150,000 files took minutes to write and remove on a loaded disk.
    const empty = JSON.stringify({
      component: 'falco_receiver',
      receivedAt: 1_750_000_000_000,
      decoded: { events: [], invalid: [], skipped: {}, internal: 0 },
    })
    const flood = 20_000
    for (let seq = 3; seq < 3 + flood; seq++) {
      writeFileSync(join(dataDir, 'falco-spool', `${String(seq).padStart(16, '0')}.json`), empty)
    }
    const { stdout } = await run(
      process.execPath,
      [
        '--stack-size=120',
        '--import',
        'tsx',
        join(root, 'tests/helpers/drain-falco-spool.ts'),
        join(dataDir, 'falco-spool'),
      ],
      { cwd: root },
    )
    const outputs = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    expect(outputs.slice(0, 2)).toEqual(alerts.slice(0, 2).map((l) => JSON.parse(l).output))
    expect(outputs).toHaveLength(2 + flood)
    expect(spoolFiles(dataDir)).toEqual([])
    rmSync(dataDir, { recursive: true, force: true })
  }, 60_000)

  it('spools a request whose publish outlasts falco_spool_after (a hanging bus), before the sender gives up', async () => {
    const h = await startHarness({ spoolAfterMs: 200 })
    const { held: hanging, release } = gate()
    h.bus.before = (topic) => (topic === eventsTopic ? hanging : Promise.resolve())
    // The publish hangs until release() below: the answer comes from the spool, after falco_spool_after.
    const res = await post(h, alerts[0] as string)
    expect(res.statusCode).toBe(202)
    expect(res.json()).toMatchObject({ accepted: 1, spooled: true })
    expect(h.config.ingest.falco_spool_after).toBe(200)
    expect(h.bus.records(eventsTopic)).toHaveLength(0)
    // The hanging publish completes later: the spooled copy is the same event (same id), a duplicate.
    h.bus.before = undefined
    release()
    await waitFor(() => spoolFiles(h.dataDir).length === 0, { what: 'the spool to drain' })
    const ids = h.bus.records(eventsTopic).map((r) => (r.value as NormalizedEvent).id)
    expect(new Set(ids).size).toBe(1)
    await h.ingest.close()
  })

  it('refuses with 429 only when the disk budget is spent, and says so in /readyz and /metrics', async () => {
    const h = await startHarness({ maxPending: 1, spoolBytes: 4096, spoolAfterMs: 60_000 })
    h.bus.before = () => new Promise<void>(() => {})
    void post(h, alerts[0] as string)
    await waitFor(() => h.ingest.readiness.ingest?.().detail, { what: 'the cap to be held' })
    const statuses: number[] = []
    for (const line of alerts.slice(1, 12)) statuses.push((await post(h, line)).statusCode)
    expect(statuses).toContain(202)
    expect(statuses).toContain(429)
    const refused = await post(h, alerts[1] as string)
    expect(refused.headers['retry-after']).toBeDefined()
    expect(refused.json().error.message).toContain('spool is full')
    expect(h.ingest.readiness.falco_spool?.()).toMatchObject({ ok: false })
    expect(await h.rt.metricValue('nerve_ingest_falco_spool_refused_total')).toBeGreaterThan(0)
    expect(await h.rt.metricValue('nerve_ingest_falco_spool_limit_bytes')).toBe(4096)
  })

  it('counts what the files take on disk, not their length, so a flood of small requests stays in budget', async () => {
    const h = await startHarness({ spoolBytes: 64 * 1024 })
    h.bus.before = async () => {
      throw new NerveError('BUS_UNAVAILABLE', 'Kafka publish failed: Connection refused', { retriable: true })
    }
    const statuses: number[] = []
    for (let i = 0; i < 40; i++)
      statuses.push((await post(h, alerts[i % alerts.length] as string)).statusCode)
    expect(statuses).toContain(429)
    const dir = join(h.dataDir, 'falco-spool')
    const onDisk = spoolFiles(h.dataDir).reduce((n, f) => n + statSync(join(dir, f)).blocks * 512, 0)
    expect(onDisk).toBeLessThanOrEqual(64 * 1024)
    expect(await h.rt.metricValue('nerve_ingest_falco_spool_bytes')).toBeGreaterThanOrEqual(onDisk)
    await h.ingest.close()
  })

  it('is off with a budget of 0: a busy bus is answered 429 as before', async () => {
    const h = await startHarness({ maxPending: 1, spoolBytes: 0 })
    h.bus.before = () => new Promise<void>(() => {})
    void post(h, alerts[0] as string)
    await waitFor(() => h.ingest.readiness.ingest?.().detail, { what: 'the cap to be held' })
    expect((await post(h, alerts[1] as string)).statusCode).toBe(429)
    expect(h.ingest.readiness.ingest?.()).toMatchObject({ ok: false })
  })

  it('drains what was spooled before a restart with the spool switched off, and says so once', async () => {
    const dataDir = tempDir('nerve-spool-off')
    const down = await startHarness({ dataDir })
    down.bus.before = async () => {
      throw new NerveError('BUS_UNAVAILABLE', 'Kafka publish failed: Connection refused', { retriable: true })
    }
    for (const line of alerts.slice(0, 3)) expect((await post(down, line)).statusCode).toBe(202)
    await down.ingest.close()
    expect(spoolFiles(dataDir)).toHaveLength(3)

    // Answered 202 before the restart: switching the spool off must not strand them.
    const up = await startHarness({ dataDir, spoolBytes: 0 })
    await waitFor(() => spoolFiles(dataDir).length === 0, { what: 'the spooled requests drained' })
    const outputs = up.bus.records(eventsTopic).map((r) => (r.value as NormalizedEvent).edge?.output)
    expect(outputs).toEqual(alerts.slice(0, 3).map((l) => JSON.parse(l).output))
    const lines = up.rt.logs.filter((l) => /spool/i.test(l.msg) && l.level === 'warn')
    expect(lines).toEqual([expect.objectContaining({ requests: 3 })])
    expect(lines[0]?.msg).toMatch(/off/)
    await waitFor(() => up.ingest.readiness.falco_spool?.().detail === undefined, { what: 'readiness clear' })
    expect(up.ingest.readiness.falco_spool?.()).toEqual({ ok: true })
    await up.ingest.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('creates no spool directory when the spool is off and nothing was spooled', async () => {
    const h = await startHarness({ spoolBytes: 0 })
    expect(readdirSync(h.dataDir)).not.toContain('falco-spool')
    expect(h.ingest.readiness.falco_spool).toBeUndefined()
    await h.ingest.close()
  })
})

describe('the Falco spool, order of arrival', () => {
  it('drains a large request before a small one that arrived after it, though the small one is written first', async () => {
    const rt = createTestRuntime()
    const published: number[] = []
    const publisher: DecodedPublisher = {
      checkCapacity: () => {},
      publish: async (_component, decoded) => {
        published.push(decoded.events.length)
      },
      pending: () => 0,
      drain: async () => {},
    }
    const dir = tempDir('nerve-spool-order')
    const spool = createFalcoSpool({ dir, maxBytes: 64 * 1024 * 1024, patienceMs: 100 }, { ...rt, publisher })
    const decodedOf = (events: number): Decoded => ({
      events: Array.from({ length: events }, (_, i) => ({ seq: i }) as unknown as NormalizedEvent),
      invalid: [],
      skipped: {},
      internal: 0,
    })
    // The large request is serialized a part at a time, over many turns; the small one, arriving a turn
    // later, is serialized in one and written while the large one is still being serialized.
    const large = spool.append('falco_receiver', decodedOf(2_000), 1)
    await nextTurn()
    const small = spool.append('falco_receiver', decodedOf(1), 2)
    await Promise.all([large, small])
    await waitFor(() => published.length === 2, { what: 'both drained' })
    expect(published).toEqual([2_000, 1])
    await spool.close()
    rmSync(dir, { recursive: true, force: true })
  })
})
