// `nerve run` end to end, as a user runs it: a real Falco alert and a real CloudTrail record of one agent
// posted over HTTP become a correlation in /v1/correlations and a signed revoke webhook at a receiver,
// also when the process is killed (SIGKILL) between the two events.
import { writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { NerveProcess } from '../helpers/nerve-process.ts'
import { tempDir } from '../helpers/random-names.ts'
import { attachLogFile, attachRecord, falcoAlert } from '../helpers/shell-then-attach.ts'
import { waitFor } from '../helpers/wait-for.ts'
import { nerveRunsStoppedAfterEach, postWithToken, slow } from './nerve-runs.ts'

const config = `
agents:
  - id: alpine-debugger
    match:
      k8s: [{ namespace: default, pod: alpine }]
      aws: ["arn:aws:iam::123456789012:role/tester"]
`

type Received = { headers: IncomingMessage['headers']; body: string }

async function startReceiver() {
  const received: Received[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => {
      body += String(c)
    })
    req.on('end', () => {
      received.push({ headers: req.headers, body })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/revoke`, received, close: () => server.close() }
}

const run = nerveRunsStoppedAfterEach()

async function post(n: NerveProcess, path: string, body: string) {
  const res = await postWithToken(n, path, body)
  return { status: res.status, body: await res.json() }
}

async function correlationsOf(n: NerveProcess) {
  const res = await fetch(`${n.url}/v1/correlations?agent=alpine-debugger`)
  return ((await res.json()) as { items: unknown[] }).items
}

describe('nerve run, end to end over HTTP', { timeout: 90_000 }, () => {
  it('turns a Falco shell alert and a CloudTrail AttachRolePolicy of one agent into a correlation and a revoke', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'nerve.yaml'), config)
    const receiver = await startReceiver()
    const nerve = await run(join(dir, 'nerve.yaml'), {
      NERVE_DATA_DIR: join(dir, 'data'),
      NERVE_REVOKE_WEBHOOK_URL: receiver.url,
      NERVE_REVOKE_WEBHOOK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    })
    expect(await post(nerve, '/v1/falco', falcoAlert)).toMatchObject({
      status: 202,
      body: { accepted: 1 },
    })
    expect(await post(nerve, '/v1/cloudtrail', attachLogFile)).toMatchObject({
      status: 202,
      body: { accepted: 1 },
    })

    const [correlation] = await waitFor(async () => {
      const found = await correlationsOf(nerve)
      return found.length > 0 ? found : undefined
    }, slow)
    expect(correlation).toMatchObject({
      rule: { id: 'shell-then-iam-privilege-change' },
      agent: { id: 'alpine-debugger' },
      edge: { rule: 'Terminal shell in container', time: Date.parse('2021-04-10T19:27:21.002Z') },
      core: { event_id: attachRecord.eventID, action: 'iam:AttachRolePolicy' },
      delta_ms: 89_998,
    })
    // The correlator runs on a thread of its own; /metrics serves its series with the main thread's, each
    // family once.
    // (its counters move just after the batch is committed, so they are waited for)
    const metrics = await waitFor(async () => {
      const text = await (await fetch(`${nerve.url}/metrics`)).text()
      return /^nerve_correlate_correlations_total [1-9]/m.test(text) ? text : undefined
    }, slow)
    expect(metrics).toMatch(/^nerve_component_received_events_total\{component="correlator"\} 2$/m)
    expect(metrics).toMatch(/^nerve_component_received_events_total\{component="falco_receiver"\} 1$/m)
    expect(metrics.match(/^# HELP nerve_component_received_events_total /gm)).toHaveLength(1)
    const delivery = await waitFor(() => receiver.received[0], slow)
    expect(delivery.headers['webhook-signature']).toMatch(/^v1,/)
    expect(JSON.parse(delivery.body)).toMatchObject({ specversion: '1.0', subject: 'alpine-debugger' })
    receiver.close()
  })

  it('keeps the first half of a pair across a kill -9 and completes it after the restart', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'nerve.yaml'), config)
    const env = { NERVE_DATA_DIR: join(dir, 'data') }
    const first = await run(join(dir, 'nerve.yaml'), env)
    expect((await post(first, '/v1/falco', falcoAlert)).status).toBe(202)
    await waitFor(async () => {
      const metrics = await (await fetch(`${first.url}/metrics`)).text()
      return /nerve_component_received_events_total\{component="correlator"\} [1-9]/.test(metrics)
    }, slow)
    await first.kill()

    const nerve = await run(join(dir, 'nerve.yaml'), env)
    expect((await post(nerve, '/v1/cloudtrail', attachLogFile)).status).toBe(202)
    const found = await waitFor(async () => {
      const list = await correlationsOf(nerve)
      return list.length > 0 ? list : undefined
    }, slow)
    expect(found).toHaveLength(1)
  })
})
