// Alerts of Falco's cloudtrail plugin (`source: aws_cloudtrail`) become core events: CloudTrail through the
// edge door. ingest.tokens.falco exists so that a Falco node cannot post CloudTrail (with a forged alert of
// its own, a forged IAM write of any role makes a correlation, and a revoke, for any agent): a caller that
// showed only the Falco token (or a client certificate) may post Falco alerts, not these.
import { describe, expect, it } from 'vitest'
import { deadLetterTopic, eventsTopic } from '../../../bus/topics.ts'
import { createHttpServer } from '../../../runtime/http-server.ts'
import { startHarness, token } from './ingest-harness.ts'

const falcoToken = 'nrv_falco-node-token-0123456789'
const cloudTrailToken = 'nrv_cloudtrail-token-0123456789'

const now = Date.parse('2025-06-15T15:05:00Z')
const shellAlert = JSON.stringify({
  time: '2025-06-15T15:00:00.000000000Z',
  rule: 'Terminal shell in container',
  priority: 'Warning',
  source: 'syscall',
  hostname: 'node-1',
  output: 'A shell was spawned',
  output_fields: { 'k8s.ns.name': 'agents', 'k8s.pod.name': 'victim-0', 'proc.name': 'bash' },
})
const forgedCall = JSON.stringify({
  time: '2025-06-15T15:00:30.000000000Z',
  rule: 'Attach policy',
  priority: 'Notice',
  source: 'aws_cloudtrail',
  output: 'A policy was attached',
  output_fields: {
    'ct.id': '7b7e4636-4713-3d04-b86a-cd6774cdbae9',
    'ct.src': 'iam.amazonaws.com',
    'ct.name': 'AttachRolePolicy',
    'ct.user.arn': 'arn:aws:sts::123456789012:assumed-role/victim/session',
  },
})

async function start() {
  const h = await startHarness({ now: () => now })
  const server = createHttpServer(h.config.http, {
    log: h.rt.log,
    metrics: h.rt.metrics,
    ingestToken: token,
    tokens: { falco: falcoToken, cloudtrail: cloudTrailToken },
  })
  server.addRoutes(h.ingest.routes)
  return { ...h, server }
}

describe('CloudTrail through the Falco door', () => {
  it('is refused per item to a caller with the Falco token only; its other alerts are accepted', async () => {
    const h = await start()
    // ?token= and a bearer on the direct path; an unusual Content-Type goes through fastify's.
    const ways: [string, Record<string, string>][] = [
      [`/v1/falco?token=${falcoToken}`, {}],
      ['/v1/falco', { authorization: `Bearer ${falcoToken}` }],
      ['/v1/falco', { authorization: `Bearer ${falcoToken}`, 'content-type': 'application/x-falco' }],
    ]
    for (const [url, headers] of ways) {
      const res = await h.server.inject({
        method: 'POST',
        url,
        payload: `${shellAlert}\n${forgedCall}\n`,
        headers,
      })
      expect(res.statusCode).toBe(400)
      expect(res.json()).toMatchObject({ accepted: 1, rejected: 1 })
      expect(res.json().error.details).toEqual([
        { index: 1, path: '/source', reason: expect.stringContaining('ingest.tokens.falco') },
      ])
    }
    expect(h.bus.records(eventsTopic).map((r) => r.value.side)).toEqual(['edge', 'edge', 'edge'])
    expect(h.bus.records(deadLetterTopic)).toHaveLength(3)
  })

  it('is accepted with the shared token, as before', async () => {
    const h = await start()
    const res = await h.server.inject({
      method: 'POST',
      url: '/v1/falco',
      payload: `${shellAlert}\n${forgedCall}\n`,
      headers: { authorization: `Bearer ${token}` },
    })
    expect(res.statusCode).toBe(202)
    expect(h.bus.records(eventsTopic).map((r) => r.value.side)).toEqual(['edge', 'core'])
  })
})
