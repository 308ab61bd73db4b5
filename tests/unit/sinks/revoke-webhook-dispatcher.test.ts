import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { correlationHead, revokeOutcomesTopic } from '../../../bus/topics.ts'
import { NerveError } from '../../../runtime/errors.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { Config, Correlation, RevokeOutcome, WebhookTargetConfig } from '../../../schemas/types.ts'
import { buildRevokeEvent } from '../../../sinks/revoke-payload.ts'
import { revokeDecisionId } from '../../../sinks/revoke-policy.ts'
import { createRevokeDispatcher, type RevokeDispatcher } from '../../../sinks/revoke-webhook-dispatcher.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { createMemoryBus } from './memory-bus.ts'
import { type Answer, startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.ts'

// An independent verifier, written from the Standard Webhooks spec text (spec/standard-webhooks.md):
// strip `whsec_`, base64-decode the rest as the HMAC-SHA256 key, sign `${id}.${timestamp}.${body}`,
// compare each space-separated `v1,<base64>` in constant time, reject timestamps over 5 minutes off.
function verifyStandardWebhook(
  headers: IncomingHttpHeaders,
  body: string,
  secret: string,
  nowSeconds: number,
) {
  const id = String(headers['webhook-id'])
  const timestamp = String(headers['webhook-timestamp'])
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > 300) return false
  const key = Buffer.from(secret.split('_')[1] as string, 'base64')
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest()
  return String(headers['webhook-signature'] ?? '')
    .split(' ')
    .some((entry) => {
      const [version, signature] = entry.split(',')
      const given = Buffer.from(signature ?? '', 'base64')
      return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected)
    })
}

const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
const newSecret = `whsec_${Buffer.from('the-next-secret-24-bytes').toString('base64')}`
const t0 = Date.UTC(2026, 10, 25, 16, 5, 0)
const defaults = loadConfig()
const hour = 3_600_000

type Setup = {
  /** The bus refuses this many publishes first (as an unavailable Kafka would). */
  failPublishes?: number
  targets: Partial<WebhookTargetConfig>[]
  revoke?: Partial<Config['revoke']>
  agents?: Config['agents']
  dataDir?: string
}

const open: { close(): Promise<void> }[] = []
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close()
})

async function receiver(answer?: (req: { body: string }, index: number) => Answer): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver(answer)
  open.push(r)
  return r
}

function dispatcher(setup: Setup) {
  const clock = { t: t0 }
  const delays: number[] = []
  const rt = createTestRuntime({ now: () => clock.t })
  const bus = createMemoryBus()
  let failures = setup.failPublishes ?? 0
  const publish = bus.publish.bind(bus)
  bus.publish = async (topic, records) => {
    if (failures-- > 0) throw new NerveError('BUS_UNAVAILABLE', 'Bus down.', { retriable: true })
    return publish(topic, records)
  }
  const dataDir = setup.dataDir ?? tempDir('nerve-revoke')
  const webhooks = setup.targets.map((t) => ({ url: '', timeout: 5000, concurrency: 4, secret, ...t }))
  const d: RevokeDispatcher = createRevokeDispatcher(
    {
      data_dir: dataDir,
      agents: setup.agents ?? [],
      revoke: { ...defaults.revoke, webhooks, ...setup.revoke },
    },
    {
      bus,
      log: rt.log,
      metrics: rt.metrics,
      now: () => clock.t,
      // Fake time: a wait is recorded and passes at once.
      sleep: async (ms) => {
        delays.push(ms)
        clock.t += ms
      },
      random: () => 0.5,
    },
  )
  open.push(d)
  const outcomes = () => bus.published<RevokeOutcome>(revokeOutcomesTopic)
  return { d, rt, bus, clock, delays, dataDir, outcomes, close: d.close }
}

const statuses = (outcomes: RevokeOutcome[]) => outcomes.map((o) => `${o.status}:${o.reason}`)
const sent = (outcomes: RevokeOutcome[]) => outcomes.filter((o) => o.status === 'sent').length
const allowed = { status: 'pending', reason: 'policy_allowed' }

describe('revoke webhook dispatcher: delivery', () => {
  it('verifies the reference test vector with the independent verifier (the verifier itself is right)', () => {
    const headers = {
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    }
    expect(verifyStandardWebhook(headers, '{"test": 2432232314}', secret, 1614265330)).toBe(true)
    expect(verifyStandardWebhook(headers, '{"test": 2432232315}', secret, 1614265330)).toBe(false)
    expect(verifyStandardWebhook(headers, '{"test": 2432232314}', secret, 1614265330 + 301)).toBe(false)
  })

  it('POSTs a signed CloudEvent that an independent Standard Webhooks verifier accepts', async () => {
    const r = await receiver()
    const { d, clock, outcomes } = dispatcher({ targets: [{ url: r.url }] })
    d.startDelivering()
    const c = makeCorrelation(0)
    await d.handle([c])
    await waitFor(() => outcomes().some((o) => o.status === 'sent'), { what: 'a sent outcome' })

    expect(r.requests).toHaveLength(1)
    const [req] = r.requests
    if (!req) throw new Error('no request')
    const decisionId = revokeDecisionId(c.incident.id)
    expect(req.headers['content-type']).toBe('application/cloudevents+json; charset=UTF-8')
    expect(req.headers['webhook-id']).toBe(decisionId)
    expect(req.headers['webhook-timestamp']).toBe(String(Math.floor(t0 / 1000)))
    expect(verifyStandardWebhook(req.headers, req.body, secret, Math.floor(clock.t / 1000))).toBe(true)
    expect(JSON.parse(req.body)).toEqual(JSON.parse(JSON.stringify(buildRevokeEvent(c, decisionId, t0))))
    expect(statuses(outcomes())).toEqual(['pending:policy_allowed', 'sent:delivered'])
    expect(outcomes()[1]).toMatchObject({
      id: `${decisionId}:2`,
      decision_id: decisionId,
      correlation_id: c.id,
      incident_id: c.incident.id,
      agent_id: 'data-cleaner',
      target: r.url,
      attempts: 1,
      http_status: 204,
    })
  })

  it('decides on the heads the bus hands over, reading a correlation whole only for a revoke it sends', async () => {
    const r = await receiver()
    const { d, outcomes, rt } = dispatcher({ targets: [{ url: r.url }] })
    d.startDelivering()
    const batch = [
      makeCorrelation(1, { rule: { id: 'outbound-then-s3-read', severity: 30, revoke: false } }),
      makeCorrelation(2, { score: 10 }),
      makeCorrelation(3),
      makeCorrelation(4, { incident: { id: 'inc-data-cleaner-3' } }),
    ]
    const read: number[] = []
    await d.handle(batch.map(correlationHead), (i) => {
      read.push(i)
      return batch[i] as Correlation
    })
    await waitFor(() => outcomes().some((o) => o.status === 'sent'), { what: 'a sent outcome' })
    // The second correlation of the incident is suppressed on its head; only the revoke's is read whole.
    expect(read).toEqual([2])
    const decisionId = revokeDecisionId(batch[2]?.incident.id as string)
    expect(JSON.parse(r.requests[0]?.body ?? '')).toEqual(
      JSON.parse(JSON.stringify(buildRevokeEvent(batch[2] as Correlation, decisionId, t0))),
    )
    const suppressed = (reason: string) =>
      rt.metricValue('nerve_revoke_outcomes_total', { status: 'suppressed', reason })
    expect(await suppressed('rule_not_revoking')).toBe(1)
    expect(await suppressed('below_min_score')).toBe(1)
    expect(await suppressed('incident_already_revoked')).toBe(1)
  })

  it('signs with every secret during a rotation; each secret verifies on its own', async () => {
    const r = await receiver()
    const { d, outcomes, clock } = dispatcher({ targets: [{ url: r.url, secret, secrets: [newSecret] }] })
    d.startDelivering()
    await d.handle([makeCorrelation(0)])
    await waitFor(() => outcomes().some((o) => o.status === 'sent'))
    const [req] = r.requests
    if (!req) throw new Error('no request')
    expect(String(req.headers['webhook-signature']).split(' ')).toHaveLength(2)
    const now = Math.floor(clock.t / 1000)
    expect(verifyStandardWebhook(req.headers, req.body, secret, now)).toBe(true)
    expect(verifyStandardWebhook(req.headers, req.body, newSecret, now)).toBe(true)
  })

  it('retries a 503 after its Retry-After, with the same webhook-id and body bytes, freshly signed', async () => {
    const r = await receiver((_req, i) =>
      i < 2 ? { status: 503, headers: { 'retry-after': '7' } } : { status: 200 },
    )
    const { d, outcomes, delays } = dispatcher({ targets: [{ url: r.url }] })
    d.startDelivering()
    await d.handle([makeCorrelation(0)])
    await waitFor(() => outcomes().some((o) => o.status === 'sent'))

    expect(r.requests).toHaveLength(3)
    expect(new Set(r.requests.map((q) => q.headers['webhook-id'])).size).toBe(1)
    expect(new Set(r.requests.map((q) => q.body)).size).toBe(1)
    const stamps = r.requests.map((q) => Number(q.headers['webhook-timestamp']))
    expect(stamps[1] as number).toBeGreaterThanOrEqual((stamps[0] as number) + 7)
    for (const q of r.requests)
      expect(verifyStandardWebhook(q.headers, q.body, secret, stamps[2] as number)).toBe(true)
    expect(delays.slice(0, 2).every((ms) => ms >= 7000)).toBe(true)
    expect(statuses(outcomes())).toEqual([
      'pending:policy_allowed',
      'pending:server_error',
      'pending:server_error',
      'sent:delivered',
    ])
    expect(outcomes().map((o) => o.attempts)).toEqual([0, 1, 2, 3])
  })

  it('honours a Retry-After given as an HTTP date on 429', async () => {
    const r = await receiver((_req, i) =>
      i === 0
        ? { status: 429, headers: { 'retry-after': new Date(t0 + 42_000).toUTCString() } }
        : { status: 202 },
    )
    const { d, outcomes, delays } = dispatcher({ targets: [{ url: r.url }] })
    d.startDelivering()
    await d.handle([makeCorrelation(0)])
    await waitFor(() => outcomes().some((o) => o.status === 'sent'))
    expect(delays[0]).toBe(42_000)
    expect(statuses(outcomes())).toContain('pending:throttled')
  })

  it('stops on another 4xx and records why, without retrying', async () => {
    const r = await receiver(() => ({ status: 403 }))
    const { d, outcomes, rt } = dispatcher({ targets: [{ url: r.url }] })
    d.startDelivering()
    await d.handle([makeCorrelation(0)])
    await waitFor(() => outcomes().some((o) => o.status === 'failed'))
    expect(r.requests).toHaveLength(1)
    expect(outcomes().at(-1)).toMatchObject({
      status: 'failed',
      reason: 'rejected',
      http_status: 403,
      attempts: 1,
    })
    expect(
      await rt.metricValue('nerve_component_errors_total', {
        component: 'revoke_dispatcher',
        error_code: 'SINK_REJECTED',
      }),
    ).toBe(1)
  })

  it('disables a target that answers 410, durably, and shows it in /readyz and /metrics', async () => {
    const gone = await receiver(() => ({ status: 410 }))
    const ok = await receiver()
    const revoke = { rate_limit: { per_agent: { count: 9, per: hour }, global: { count: 9, per: hour } } }
    const first = dispatcher({ targets: [{ url: gone.url }, { url: ok.url }], revoke })
    first.d.startDelivering()
    await first.d.handle([makeCorrelation(0)])
    await waitFor(() => first.outcomes().filter((o) => o.status !== 'pending').length === 2)
    expect(first.outcomes().find((o) => o.target === gone.url)).toMatchObject({
      status: 'failed',
      reason: 'target_gone',
      http_status: 410,
    })
    expect(first.d.readiness()).toEqual({ ok: false, detail: `${gone.url}: target_gone` })
    expect(await first.rt.metricValue('nerve_revoke_target_healthy', { target: gone.url })).toBe(0)
    expect(await first.rt.metricValue('nerve_revoke_target_healthy', { target: ok.url })).toBe(1)
    await first.close()

    const second = dispatcher({
      targets: [{ url: gone.url }, { url: ok.url }],
      revoke,
      dataDir: first.dataDir,
    })
    second.d.startDelivering()
    expect(second.d.readiness().ok).toBe(false)
    await second.d.handle([makeCorrelation(1)])
    await waitFor(() => second.outcomes().filter((o) => o.status !== 'pending').length === 2)
    expect(gone.requests).toHaveLength(1)
    expect(ok.requests).toHaveLength(2)
    expect(second.outcomes().find((o) => o.target === gone.url)).toMatchObject({ reason: 'target_disabled' })
  })

  // A 410 disables a target for good, across restarts: an operator must still be able to bring it back.
  it('enables a target that answered 410 again when its config entry changes, and not before', async () => {
    let answer = 410
    const soar = await receiver(() => ({ status: answer }))
    const revoke = { rate_limit: { per_agent: { count: 9, per: hour }, global: { count: 9, per: hour } } }
    const first = dispatcher({ targets: [{ url: soar.url }], revoke })
    first.d.startDelivering()
    await first.d.handle([makeCorrelation(0)])
    await waitFor(() => first.outcomes().some((o) => o.reason === 'target_gone'))
    await first.close()
    answer = 204

    // The same entry, its keys in another order: still disabled.
    const same = dispatcher({
      targets: [{ secret, concurrency: 4, timeout: 5000, url: soar.url }],
      revoke,
      dataDir: first.dataDir,
    })
    same.d.startDelivering()
    expect(same.d.readiness()).toEqual({ ok: false, detail: `${soar.url}: target_gone` })
    await same.d.handle([makeCorrelation(1)])
    await waitFor(() => same.outcomes().some((o) => o.reason === 'target_disabled'))
    expect(soar.requests).toHaveLength(1)
    await same.close()

    // The operator rotated its secret: the entry changed, so the target is enabled again, and says so.
    const changed = dispatcher({
      targets: [{ url: soar.url, secret: newSecret }],
      revoke,
      dataDir: first.dataDir,
    })
    changed.d.startDelivering()
    expect(changed.d.readiness()).toEqual({ ok: true })
    expect(await changed.rt.metricValue('nerve_revoke_target_healthy', { target: soar.url })).toBe(1)
    expect(changed.rt.logs.some((l) => l.msg?.includes('enabled again'))).toBe(true)
    await changed.d.handle([makeCorrelation(2)])
    await waitFor(() => changed.outcomes().some((o) => o.status === 'sent'))
    expect(soar.requests).toHaveLength(2)
  })

  it('gives up after max_attempts of 5xx or network errors, and marks the target unhealthy', async () => {
    const r = await receiver(() => ({ status: 500 }))
    const { d, outcomes, rt } = dispatcher({ targets: [{ url: r.url }], revoke: { max_attempts: 3 } })
    d.startDelivering()
    expect(d.readiness().ok).toBe(true)
    await d.handle([makeCorrelation(0)])
    await waitFor(() => outcomes().some((o) => o.status === 'failed'))
    expect(r.requests).toHaveLength(3)
    expect(outcomes().at(-1)).toMatchObject({ reason: 'max_attempts', detail: 'server_error', attempts: 3 })
    expect(d.readiness()).toEqual({ ok: false, detail: `${r.url}: 3 failed attempts` })
    expect(await rt.metricValue('nerve_revoke_target_healthy', { target: r.url })).toBe(0)

    const closed = await receiver()
    await closed.close()
    const unreachable = dispatcher({ targets: [{ url: closed.url }], revoke: { max_attempts: 2 } })
    unreachable.d.startDelivering()
    await unreachable.d.handle([makeCorrelation(0)])
    await waitFor(() => unreachable.outcomes().some((o) => o.status === 'failed'))
    expect(unreachable.outcomes().at(-1)).toMatchObject({ reason: 'max_attempts', detail: 'network_error' })
  })
})

describe('revoke webhook dispatcher: durability', () => {
  it('delivers a revoke decided before a crash after the restart, once per target', async () => {
    const a = await receiver()
    const b = await receiver()
    const targets = [{ url: a.url }, { url: b.url }]
    const c = makeCorrelation(0)

    // Decided and committed to the outbox, then the process dies before delivering anything.
    const before = dispatcher({ targets })
    await before.d.handle([c])
    await before.close()
    expect(a.requests.length + b.requests.length).toBe(0)

    const after = dispatcher({ targets, dataDir: before.dataDir })
    expect(await after.rt.metricValue('nerve_revoke_outbox_pending_deliveries')).toBe(2)
    after.d.startDelivering()
    await waitFor(() => after.outcomes().filter((o) => o.status === 'sent').length === 2)
    expect(a.requests).toHaveLength(1)
    expect(b.requests).toHaveLength(1)
    // The bus redelivers the uncommitted batch: already decided, nothing new is sent or recorded.
    await after.d.handle([c])
    expect(await after.rt.metricValue('nerve_revoke_outbox_pending_deliveries')).toBe(0)
    expect(
      await after.rt.metricValue('nerve_component_discarded_events_total', {
        component: 'revoke_dispatcher',
        reason: 'duplicate',
      }),
    ).toBe(1)
    await after.close()

    const again = dispatcher({ targets, dataDir: before.dataDir })
    again.d.startDelivering()
    expect(await again.rt.metricValue('nerve_revoke_outbox_pending_deliveries')).toBe(0)
    // Outcomes recorded before the crash are published after it: none is lost.
    expect(statuses(before.outcomes())).toEqual(['pending:policy_allowed'])
    expect(statuses(after.outcomes()).filter((s) => s.startsWith('sent'))).toHaveLength(2)
  })

  it('keeps a delivery interrupted by shutdown pending, and sends it after the restart', async () => {
    // The target does not answer while `hold`: close() aborts that request mid-flight, as a crash would.
    let hold = true
    let received = 0
    const server = createServer((_req, res) => {
      received++
      if (!hold) res.writeHead(200).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    open.push({
      close: () => new Promise<void>((done) => server.close(() => done())).then(() => undefined),
    })
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/revoke`

    const before = dispatcher({ targets: [{ url }] })
    before.d.startDelivering()
    await before.d.handle([makeCorrelation(0)])
    await waitFor(() => received === 1, { what: 'the first attempt to arrive' })
    await before.close()
    server.closeAllConnections()
    expect(statuses(before.outcomes())).toEqual(['pending:policy_allowed'])

    hold = false
    const after = dispatcher({ targets: [{ url }], dataDir: before.dataDir })
    after.d.startDelivering()
    await waitFor(() => after.outcomes().some((o) => o.status === 'sent'))
    expect(received).toBe(2)
    expect(after.outcomes().find((o) => o.status === 'sent')).toMatchObject({ attempts: 1 })
  })

  it('keeps outcomes in the outbox while the bus refuses them, and publishes them once it recovers', async () => {
    const r = await receiver()
    const { d, outcomes, rt } = dispatcher({ targets: [{ url: r.url }], failPublishes: 3 })
    d.startDelivering()
    await d.handle([makeCorrelation(0)])
    await waitFor(() => outcomes().length === 2, { what: 'both outcomes published' })
    expect(statuses(outcomes())).toEqual(['pending:policy_allowed', 'sent:delivered'])
    expect(
      await rt.metricValue('nerve_component_errors_total', {
        component: 'revoke_dispatcher',
        error_code: 'BUS_UNAVAILABLE',
        stage: 'publish_outcomes',
      }),
    ).toBeGreaterThanOrEqual(1)
  })
})

describe('revoke webhook dispatcher: policy in action', () => {
  it('under a flood of 1,000 correlations from 50 agents sends exactly what the limits allow', async () => {
    const r = await receiver()
    const { d, outcomes, rt } = dispatcher({
      targets: [{ url: r.url }],
      revoke: { rate_limit: { per_agent: { count: 1, per: hour }, global: { count: 40, per: hour } } },
    })
    d.startDelivering()
    const flood = Array.from({ length: 1000 }, (_, i) =>
      makeCorrelation(i, { agent: { id: `agent-${i % 50}`, resolved_by: 'registry', identity: {} } }),
    )
    for (let i = 0; i < flood.length; i += 100) await d.handle(flood.slice(i, i + 100))
    // 1,000 decisions and 40 deliveries, each recorded.
    await waitFor(() => outcomes().length === 1040)
    expect(await rt.metricValue('nerve_revoke_outbox_pending_deliveries')).toBe(0)
    expect(r.requests).toHaveLength(40)
    const count = (reason: string) => outcomes().filter((o) => o.reason === reason).length
    expect([count('policy_allowed'), count('rate_limited_agent'), count('rate_limited_global')]).toEqual([
      40, 760, 200,
    ])
    expect(
      await rt.metricValue('nerve_component_received_events_total', { component: 'revoke_dispatcher' }),
    ).toBe(1000)
    expect(
      await rt.metricValue('nerve_component_sent_events_total', { component: 'revoke_dispatcher' }),
    ).toBe(40)
    expect(
      await rt.metricValue('nerve_component_discarded_events_total', {
        component: 'revoke_dispatcher',
        reason: 'rate_limited_global',
      }),
    ).toBe(200)
  })

  it('records a fallback-named agent refused for want of its half of the global budget under a reason of its own', async () => {
    const { d, outcomes, rt } = dispatcher({
      targets: [],
      agents: [{ id: 'data-cleaner', protected: false, match: {} }],
      revoke: {
        dry_run: true,
        rate_limit: { per_agent: { count: 1, per: hour }, global: { count: 4, per: hour } },
      },
    })
    d.startDelivering()
    const forged = (i: number) =>
      makeCorrelation(i, {
        agent: { id: `agents/forged-${i}`, resolved_by: 'workload', identity: {} },
        incident: { id: `inc-forged-${i}` },
      })
    await d.handle([0, 1, 2].map(forged))
    await waitFor(() => outcomes().length === 3)
    expect(statuses(outcomes())).toEqual([
      'dry_run:dry_run',
      'dry_run:dry_run',
      'suppressed:rate_limited_global_fallback',
    ])
    expect(
      await rt.metricValue('nerve_revoke_outcomes_total', {
        status: 'suppressed',
        reason: 'rate_limited_global_fallback',
      }),
    ).toBe(1)
  })

  it('never sends for a protected agent (recorded as suppressed, so the store says why), nor in dry-run (recorded)', async () => {
    const r = await receiver()
    const agents = [{ id: 'data-cleaner', protected: true, match: {} }]
    const guarded = dispatcher({ targets: [{ url: r.url }], agents })
    guarded.d.startDelivering()
    await guarded.d.handle([makeCorrelation(0), makeCorrelation(1)])
    const suppressed = { status: 'suppressed', reason: 'protected_agent' }
    expect(await guarded.rt.metricValue('nerve_revoke_outcomes_total', suppressed)).toBe(2)
    expect(
      await guarded.rt.metricValue('nerve_component_discarded_events_total', {
        component: 'revoke_dispatcher',
        reason: 'protected_agent',
      }),
    ).toBe(2)
    await waitFor(() => guarded.outcomes().length === 2)
    expect(statuses(guarded.outcomes())).toEqual(['suppressed:protected_agent', 'suppressed:protected_agent'])
    expect(await guarded.rt.metricValue('nerve_revoke_outbox_pending_deliveries')).toBe(0)
    expect(r.requests).toHaveLength(0)

    const dry = dispatcher({ targets: [{ url: r.url }], revoke: { dry_run: true } })
    dry.d.startDelivering()
    await dry.d.handle([
      makeCorrelation(0),
      makeCorrelation(1, { agent: { ...makeCorrelation(1).agent, id: 'b' } }),
    ])
    await waitFor(() => dry.outcomes().length === 2)
    expect(statuses(dry.outcomes())).toEqual(['dry_run:dry_run', 'dry_run:dry_run'])
    expect(await dry.rt.metricValue('nerve_revoke_outbox_pending_deliveries')).toBe(0)
    expect(r.requests).toHaveLength(0)
  })

  it("records a protected agent's suppression once per incident, not once per correlation", async () => {
    const r = await receiver()
    const agents = [{ id: 'data-cleaner', protected: true, match: {} }]
    const guarded = dispatcher({ targets: [{ url: r.url }], agents })
    guarded.d.startDelivering()
    const incident = { id: 'inc-data-cleaner-9' }
    await guarded.d.handle([0, 1, 2].map((n) => makeCorrelation(n, { incident })))
    await waitFor(() => guarded.outcomes().length === 1)
    expect(statuses(guarded.outcomes())).toEqual(['suppressed:protected_agent'])
    const suppressed = { status: 'suppressed', reason: 'protected_agent' }
    expect(await guarded.rt.metricValue('nerve_revoke_outcomes_total', suppressed)).toBe(3)
  })

  it('revokes an incident once, however many of its correlations arrive', async () => {
    const r = await receiver()
    const { d, outcomes, rt } = dispatcher({
      targets: [{ url: r.url }],
      revoke: { rate_limit: { per_agent: { count: 100, per: hour }, global: { count: 100, per: hour } } },
    })
    d.startDelivering()
    const incident = { id: 'inc-data-cleaner-7' }
    await d.handle([0, 1, 2, 3, 4].map((n) => makeCorrelation(n, { incident })))
    await waitFor(() => outcomes().some((o) => o.status === 'sent'))
    expect(r.requests).toHaveLength(1)
    // The four others are counted, not recorded: the incident's one revoke is what its outcomes show.
    expect(statuses(outcomes())).toEqual(['pending:policy_allowed', 'sent:delivered'])
    expect(
      await rt.metricValue('nerve_revoke_outcomes_total', {
        status: 'suppressed',
        reason: 'incident_already_revoked',
      }),
    ).toBe(4)
    expect(new Set(outcomes().map((o) => o.decision_id))).toEqual(new Set([revokeDecisionId(incident.id)]))
  })

  it('revokes again an incident the agent keeps alive past the per-agent period, under a new webhook-id', async () => {
    const r = await receiver()
    const dataDir = tempDir('nerve-revoke')
    const first = dispatcher({ targets: [{ url: r.url }], dataDir })
    first.d.startDelivering()
    const incident = { id: 'inc-data-cleaner-alive' }
    await first.d.handle([makeCorrelation(0, { incident })])
    await waitFor(() => sent(first.outcomes()) === 1)
    // One correlation every 20 minutes keeps the incident open (incident_gap 30m); within the hour it is
    // the incident's revoke already, after it the agent (credentials back) is revoked again.
    first.clock.t = t0 + hour - 1
    await first.d.handle([makeCorrelation(1, { incident })])
    first.clock.t = t0 + hour
    await first.d.handle([makeCorrelation(2, { incident })])
    // Delivered and recorded, not only received: close() would abort an attempt still waiting for its
    // answer, and the restart would send it again.
    await waitFor(() => sent(first.outcomes()) === 2)
    const ids = r.requests.map((q) => q.headers['webhook-id'])
    const later = makeCorrelation(2, { incident }).id
    expect(ids).toEqual([revokeDecisionId(incident.id), revokeDecisionId(incident.id, later)])
    expect(JSON.parse(r.requests[1]?.body ?? '{}').data.idempotency_key).toBe(
      revokeDecisionId(incident.id, later),
    )
    await first.d.close()
    // After a restart the two rounds are remembered: the third comes one period after the second.
    const again = dispatcher({ targets: [{ url: r.url }], dataDir })
    again.d.startDelivering()
    again.clock.t = t0 + 2 * hour - 1
    await again.d.handle([makeCorrelation(3, { incident })])
    again.clock.t = t0 + 2 * hour
    await again.d.handle([makeCorrelation(4, { incident })])
    await waitFor(() => sent(again.outcomes()) === 1)
    expect(r.requests).toHaveLength(3)
    const third = makeCorrelation(4, { incident }).id
    expect(r.requests[2]?.headers['webhook-id']).toBe(revokeDecisionId(incident.id, third))
  })

  it('gives every later round a key of its own, after a merge and a restart too', async () => {
    // The survivor of a merge learns the absorbed incident's revoke; after a restart only the outbox rows
    // are left. Numbered rounds would give the survivor's next revoke a key it used already, which the
    // outbox (one delivery per key and target) and every de-duplicating receiver would drop.
    const r = await receiver()
    const dataDir = tempDir('nerve-revoke')
    const first = dispatcher({ targets: [{ url: r.url }], dataDir })
    first.d.startDelivering()
    await first.d.handle([makeCorrelation(0, { incident: { id: 'inc-a' } })])
    first.clock.t = t0 + hour
    await first.d.handle([makeCorrelation(1, { incident: { id: 'inc-b', merged: ['inc-a'] } })])
    await waitFor(() => sent(first.outcomes()) === 2)
    await first.d.close()
    const again = dispatcher({ targets: [{ url: r.url }], dataDir })
    again.d.startDelivering()
    again.clock.t = t0 + 2 * hour
    await again.d.handle([makeCorrelation(2, { incident: { id: 'inc-b' } })])
    await waitFor(() => sent(again.outcomes()) === 1)
    expect(r.requests).toHaveLength(3)
    expect(new Set(r.requests.map((q) => q.headers['webhook-id'])).size).toBe(3)
  })

  it('knows after a restart that an incident which absorbed a revoked one is revoked', async () => {
    // Only the merging correlation says that inc-b absorbed inc-a; the outbox must keep what it taught.
    const dataDir = tempDir('nerve-revoke')
    const revoke = {
      dry_run: true,
      rate_limit: { per_agent: { count: 100, per: hour }, global: { count: 100, per: hour } },
    }
    const first = dispatcher({ targets: [], dataDir, revoke })
    first.d.startDelivering()
    await first.d.handle([makeCorrelation(0, { incident: { id: 'inc-a' } })])
    await first.d.handle([makeCorrelation(1, { incident: { id: 'inc-b', merged: ['inc-a'] } })])
    await first.d.close()
    const again = dispatcher({ targets: [], dataDir, revoke })
    again.d.startDelivering()
    await again.d.handle([makeCorrelation(2, { incident: { id: 'inc-b' } })])
    expect(
      await again.rt.metricValue('nerve_revoke_outcomes_total', {
        status: 'suppressed',
        reason: 'incident_already_revoked',
      }),
    ).toBe(1)
    expect(
      await again.rt.metricValue('nerve_revoke_outcomes_total', { status: 'dry_run', reason: 'dry_run' }),
    ).toBe(0)
  })

  it('knows an incident that absorbed a revoked one is revoked, even when a stronger correlation of it is decided first', async () => {
    const r = await receiver()
    const { d, outcomes, rt } = dispatcher({
      targets: [{ url: r.url }],
      revoke: { rate_limit: { per_agent: { count: 100, per: hour }, global: { count: 100, per: hour } } },
    })
    d.startDelivering()
    await d.handle([makeCorrelation(0, { incident: { id: 'inc-1' } })])
    await waitFor(() => outcomes().some((o) => o.status === 'sent'))
    // The merging correlation and a stronger one of the survivor in one batch: decisionOrder takes the
    // stronger first, which says nothing of the merge.
    await d.handle([
      makeCorrelation(1, { incident: { id: 'inc-0', merged: ['inc-1'] }, score: 60 }),
      makeCorrelation(2, { incident: { id: 'inc-0' }, score: 95 }),
    ])
    // Decided (and recorded) before handle resolves: one revoke in all, the first batch's.
    expect(await rt.metricValue('nerve_revoke_outcomes_total', allowed)).toBe(1)
    expect(r.requests).toHaveLength(1)
    expect(new Set(outcomes().map((o) => o.incident_id))).toEqual(new Set(['inc-1']))
  })

  it('revokes once when an incident and the one it absorbs are both in a batch, whichever is decided first', async () => {
    const r = await receiver()
    const { d, outcomes, rt } = dispatcher({
      targets: [{ url: r.url }],
      revoke: { rate_limit: { per_agent: { count: 100, per: hour }, global: { count: 100, per: hour } } },
    })
    d.startDelivering()
    // Input order: inc-1 opened, then a stronger correlation absorbs it into inc-0 and is decided first.
    await d.handle([
      makeCorrelation(1, { incident: { id: 'inc-1' }, score: 85 }),
      makeCorrelation(2, { incident: { id: 'inc-0', merged: ['inc-1'] }, score: 95 }),
    ])
    expect(await rt.metricValue('nerve_revoke_outcomes_total', allowed)).toBe(1)
    await waitFor(() => sent(outcomes()) === 1)
    expect(r.requests).toHaveLength(1)
  })
})
