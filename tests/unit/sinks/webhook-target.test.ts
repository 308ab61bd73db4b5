import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createWebhookTarget } from '../../../sinks/webhook-target.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { hasOpenssl, makeTestCertificates } from '../../helpers/test-certificates.ts'

const target = { url: 'https://127.0.0.1:1/revoke', timeout: 5000, concurrency: 1 }

describe('webhook target config', () => {
  it('labels the target without credentials or query', () => {
    const t = createWebhookTarget({
      ...target,
      url: 'https://user:pw@hooks.example:8443/revoke?access_token=s',
    })
    expect(t.label).toBe('https://hooks.example:8443/revoke')
    t.close()
  })
})

// A private CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl for this run.
describe.skipIf(!hasOpenssl)('webhook target over mutual TLS (skipped without openssl)', () => {
  const dir = tempDir('nerve-tls')
  const file = (name: string) => join(dir, name)
  let server: Server
  let url = ''
  const clients: string[] = []

  beforeAll(async () => {
    makeTestCertificates(dir)
    server = createServer(
      {
        key: readFileSync(file('server.key')),
        cert: readFileSync(file('server.crt')),
        ca: readFileSync(file('ca.crt')),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        clients.push(String((req.socket as TLSSocket).getPeerCertificate().subject?.CN))
        req.resume()
        req.on('end', () => res.writeHead(204).end())
      },
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/revoke`
  })

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('trusts the target through its own CA file and presents the client certificate', async () => {
    const t = createWebhookTarget({
      ...target,
      url,
      ca_file: file('ca.crt'),
      cert_file: file('client.crt'),
      key_file: file('client.key'),
    })
    expect(await t.post('{}', { 'content-type': 'application/json' }, new AbortController().signal)).toEqual({
      status: 204,
    })
    expect(clients).toEqual(['nerve-revoker'])
    t.close()
  })

  it('fails as a retriable network error without the CA, or without the client certificate', async () => {
    const noCa = createWebhookTarget({
      ...target,
      url,
      cert_file: file('client.crt'),
      key_file: file('client.key'),
    })
    const noCert = createWebhookTarget({ ...target, url, ca_file: file('ca.crt') })
    for (const t of [noCa, noCert]) {
      expect(await t.post('{}', {}, new AbortController().signal)).toEqual({ error: 'network_error' })
      t.close()
    }
  })
})
