// An operator follows nerve's decisions in its log: one line when an incident opens (once, however often
// its correlations are redelivered), and one per revoke outcome with its reason: decided, delivered,
// not delivered, suppressed. Before, none of these was logged. /metrics carries process metrics too.
import { afterEach, describe, expect, it } from 'vitest'
import { correlationsTopic } from '../../../bus/topics.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { createMetrics } from '../../../runtime/metrics.ts'
import type { Config } from '../../../schemas/types.ts'
import { type Sinks, startSinks } from '../../../sinks/start-sinks.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime, type LogLine } from '../../helpers/test-runtime.ts'
import { waitFor } from '../../helpers/wait-for.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { createMemoryBus } from './memory-bus.ts'
import { startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.ts'

const whsec = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
const open: (Sinks | WebhookReceiver)[] = []
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close()
})

async function run(webhookStatus: number | undefined, secret: string | null = whsec) {
  const base = loadConfig({ env: { NERVE_DATA_DIR: tempDir('nerve-logs') } })
  const webhooks = []
  if (webhookStatus !== undefined) {
    const receiver = await startWebhookReceiver(() => ({ status: webhookStatus }))
    open.push(receiver)
    webhooks.push({ url: receiver.url, ...(secret ? { secret } : {}), timeout: 5000, concurrency: 1 })
  }
  const config: Config = { ...base, revoke: { ...base.revoke, webhooks, max_attempts: 1 } }
  const rt = createTestRuntime({ level: 'info' })
  const bus = createMemoryBus()
  const sinks = await startSinks(config, { bus, log: rt.log, metrics: rt.metrics, now: Date.now })
  open.push(sinks)
  const c = makeCorrelation(0)
  const later = makeCorrelation(1, { incident: c.incident })
  await bus.publish(
    correlationsTopic,
    [c, c, later].map((value) => ({ key: value.agent.id, value })),
  )
  return { rt, c }
}

const lines = (logs: LogLine[], msg: string) => logs.filter((l) => l.msg === msg)

describe('operator log lines', () => {
  // It said "has no secret: unsigned.", which left the operator to work out what that costs.
  it('a webhook target without a secret: one warning line saying what unsigned deliveries cost', async () => {
    const { rt } = await run(204, null)
    const warned = rt.logs.filter((l) => l.level === 'warn' && /secret/.test(l.msg))
    expect(warned).toEqual([
      expect.objectContaining({
        component: 'revoke_dispatcher',
        msg: 'Revoke webhook target has no secret: its deliveries go unsigned, so its receiver cannot tell them from forged ones.',
      }),
    ])
    expect(warned[0]?.target).toMatch(/^http:\/\/127\.0\.0\.1:\d+/)
  })

  it('an incident opened once, a revoke decided and delivered', async () => {
    const { rt, c } = await run(204)
    await waitFor(() => lines(rt.logs, 'Revoke delivered.').length === 1, { what: 'the delivery line' })
    await waitFor(() => lines(rt.logs, 'Incident opened.').length === 1, { what: 'the incident line' })
    expect(lines(rt.logs, 'Incident opened.')[0]).toMatchObject({
      incident_id: c.incident.id,
      agent_id: 'data-cleaner',
      rule: 'outbound-then-iam-write',
      score: 88,
      action: 'iam:AttachRolePolicy',
    })
    expect(lines(rt.logs, 'Revoke decided: sending.')).toHaveLength(1)
    expect(lines(rt.logs, 'Revoke delivered.')[0]).toMatchObject({
      component: 'revoke_dispatcher',
      incident_id: c.incident.id,
      status: 'sent',
      reason: 'delivered',
      http_status: 204,
    })
    // Payloads stay out of the log: no Falco output, no principal.
    expect(JSON.stringify(rt.logs)).not.toContain('Disallowed outbound connection')
  })

  it('a revoke not delivered is an error line with its reason', async () => {
    const { rt } = await run(400)
    await waitFor(() => lines(rt.logs, 'Revoke not delivered.').length === 1, { what: 'the failure line' })
    expect(lines(rt.logs, 'Revoke not delivered.')[0]).toMatchObject({
      level: 'error',
      status: 'failed',
      http_status: 400,
    })
  })

  it('a revoke suppressed says why (no targets), once for the incident', async () => {
    const { rt } = await run(undefined)
    await waitFor(() => lines(rt.logs, 'Revoke suppressed.').length >= 1, { what: 'the suppression line' })
    expect(lines(rt.logs, 'Revoke suppressed.')[0]).toMatchObject({
      status: 'suppressed',
      reason: 'no_targets',
    })
    // The incident's later correlation is suppressed for the same reason: no second line.
    await waitFor(
      async () =>
        (await rt.metricValue('nerve_revoke_outcomes_total', {
          status: 'suppressed',
          reason: 'no_targets',
        })) === 2,
      { what: 'both correlations decided' },
    )
    expect(lines(rt.logs, 'Revoke suppressed.')).toHaveLength(1)
  })

  it('serving commands expose process metrics beside nerve own', async () => {
    const text = await createMetrics({ process: true }).render()
    expect(text).toContain('process_cpu_user_seconds_total')
    expect(text).toContain('nodejs_eventloop_lag_seconds')
    expect(text).toContain('process_resident_memory_bytes')
  })
})
