// An ingest route opened by a client certificate (http.tls.client_ca_file): a certificate the CA signed
// opens it without a token, on the direct path (a small JSON body) and on fastify's (a body over 256 KiB)
// alike; a self-signed certificate, or none, needs the token like any other client.

import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Route } from '../../../runtime/http-routes.ts'
import { createHttpServer, type HttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { hasOpenssl, makeTestCertificates, type TestCertificates } from '../../helpers/test-certificates.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'

const token = 'nrv_test-token-0123456789abcdef'
const echo = (url: string, source?: Route['source']): Route => ({
  method: 'POST',
  url,
  auth: 'ingest',
  ...(source ? { source } : {}),
  handle: async (req) => ({ status: 202, body: { bytes: req.body.length } }),
})

describe.skipIf(!hasOpenssl)('ingest routes opened by a client certificate (skipped without openssl)', () => {
  let certs: TestCertificates
  let server: HttpServer
  let port = 0

  beforeAll(async () => {
    certs = makeTestCertificates(tempDir('nerve-mtls'))
    const rt = createTestRuntime()
    const tls = { cert_file: certs.server.cert, key_file: certs.server.key, client_ca_file: certs.ca }
    server = createHttpServer(
      { ...loadConfig().http, port: 0, tls },
      { log: rt.log, metrics: rt.metrics, ingestToken: token },
    )
    server.addRoutes([
      echo('/v1/echo'),
      echo('/v1/falco', 'falco'),
      echo('/v1/cloudtrail', 'cloudtrail'),
      echo('/v1/cloudtrail/firehose', 'firehose'),
    ])
    const address = await server.listen()
    // The server is nerve's own (every address gets one alike), fastify still says what it serves.
    expect(address).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    port = Number(new URL(address).port)
  })
  afterAll(() => server.close())

  const post = (body: string, client?: { cert: string; key: string }, bearer?: string, path = '/v1/echo') =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'POST',
          ca: readFileSync(certs.ca),
          ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
          },
          agent: false,
        },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode ?? 0))
        },
      )
      req.on('error', reject)
      req.end(body)
    })

  const small = '{"n":1}'
  const large = JSON.stringify({ pad: 'x'.repeat(300 * 1024) })

  it('takes a certificate its CA signed in place of the token, on both paths', async () => {
    expect(await post(small, certs.client)).toBe(202)
    expect(await post(large, certs.client)).toBe(202)
  })

  // Falco's http_output is the one sender that cannot send a header. A certificate that opened every write
  // route let a Falco node (or the watched agent, escaped to it) post forged CloudTrail, which its narrow
  // token (ingest.tokens.falco) cannot, and so make a correlation, and a revoke, for any agent.
  it('opens the Falco route only: the CloudTrail and Firehose routes still need their token', async () => {
    for (const body of [small, large]) {
      expect(await post(body, certs.client, undefined, '/v1/falco')).toBe(202)
      expect(await post(body, certs.client, undefined, '/v1/cloudtrail')).toBe(401)
      expect(await post(body, certs.client, undefined, '/v1/cloudtrail/firehose')).toBe(401)
      expect(await post(body, certs.client, token, '/v1/cloudtrail')).toBe(202)
    }
  })

  it('answers 401 to a self-signed certificate or none without the token, and 202 with it', async () => {
    for (const body of [small, large]) {
      expect(await post(body, certs.stranger)).toBe(401)
      expect(await post(body)).toBe(401)
      expect(await post(body, certs.stranger, token)).toBe(202)
      expect(await post(body, undefined, token)).toBe(202)
    }
  })
})
