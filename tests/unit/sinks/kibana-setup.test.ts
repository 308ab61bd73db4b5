// `nerve setup kibana` against a loopback server standing in for Kibana: method, path (space, overwrite),
// kbn-xsrf, credentials, and a multipart body carrying dashboards/*.ndjson byte for byte; then the answers
// Kibana gives when objects fail (HTTP 200 with success: false) or credentials are refused.
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isNerveError } from '../../../runtime/errors.ts'
import type { Config } from '../../../schemas/types.ts'
import { setupKibana } from '../../../sinks/kibana-setup.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'

type Seen = { method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }

let server: Server
let url: string
let seen: Seen[]
let answer: (req: Seen) => { status: number; body: unknown }

beforeEach(async () => {
  seen = []
  answer = () => ({ status: 200, body: { success: true, successCount: 9, errors: [], successResults: [] } })
  server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const request = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      }
      seen.push(request)
      const { status, body } = answer(request)
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterEach(() => new Promise<void>((r) => server.close(() => r())))

const sinks = (kibana: Config['sinks']['kibana'], auth: Partial<Config['sinks']['elasticsearch']> = {}) => ({
  elasticsearch: { namespace: 'default', index_events: true, max_retries: 3, ...auth },
  kibana,
})

/** The parts of a multipart/form-data body, per RFC 7578. */
function multipartParts(body: Buffer, contentType: string): { headers: string; content: Buffer }[] {
  const boundary = /boundary=(.+)$/.exec(contentType)?.[1]
  if (!boundary) throw new Error(`no boundary in ${contentType}`)
  const text = body.toString('latin1')
  expect(text.endsWith(`--${boundary}--\r\n`)).toBe(true)
  return text
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((part) => {
      const separator = part.indexOf('\r\n\r\n')
      return {
        headers: part.slice(2, separator),
        content: Buffer.from(part.slice(separator + 4, -2), 'latin1'),
      }
    })
}

describe('setupKibana', () => {
  it('posts dashboards/*.ndjson to the saved objects import API of the space, overwriting by id', async () => {
    const { log } = createTestRuntime()
    const result = await setupKibana(sinks({ url, space: 'security' }, { api_key: 'a2V5OnNlY3JldA==' }), {
      log,
    })
    expect(result).toEqual({ imported: [{ file: 'edge-to-core.ndjson', objects: 9 }] })
    expect(seen).toHaveLength(1)
    const [request] = seen as [Seen]
    expect(request.method).toBe('POST')
    expect(request.url).toBe('/s/security/api/saved_objects/_import?overwrite=true')
    expect(request.headers['kbn-xsrf']).toBe('true')
    expect(request.headers.authorization).toBe('ApiKey a2V5OnNlY3JldA==')
    expect(request.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/)
    expect(Number(request.headers['content-length'])).toBe(request.body.length)
    const parts = multipartParts(request.body, String(request.headers['content-type']))
    expect(parts).toHaveLength(1)
    expect(parts[0]?.headers).toContain(
      'Content-Disposition: form-data; name="file"; filename="edge-to-core.ndjson"',
    )
    const shipped = readFileSync(resolve(import.meta.dirname, '../../../dashboards/edge-to-core.ndjson'))
    expect(parts[0]?.content.equals(shipped)).toBe(true)
  })

  it('uses the default space and basic credentials when so configured', async () => {
    await setupKibana(sinks({ url: `${url}/` }, { username: 'elastic', password: 'changeme' }), {
      log: createTestRuntime().log,
    })
    expect(seen[0]?.url).toBe('/api/saved_objects/_import?overwrite=true')
    expect(seen[0]?.headers.authorization).toBe(`Basic ${Buffer.from('elastic:changeme').toString('base64')}`)
  })

  it('fails, naming each object, when Kibana answers 200 with success: false', async () => {
    answer = () => ({
      status: 200,
      body: {
        success: false,
        successCount: 8,
        errors: [
          { id: 'nerve-cloudtrail-lag', type: 'lens', error: { type: 'unknown', message: 'bad state' } },
        ],
      },
    })
    const error = await setupKibana(sinks({ url }), { log: createTestRuntime().log }).catch((e: unknown) => e)
    expect(isNerveError(error) && error.code).toBe('SINK_REJECTED')
    expect(String((error as Error).message)).toContain('lens/nerve-cloudtrail-lag: unknown (bad state)')
  })

  it('tells a refusal (401) from an outage (503) and from an unreachable Kibana', async () => {
    const attempt = () =>
      setupKibana(sinks({ url }), { log: createTestRuntime().log }).catch((e: unknown) => e)
    answer = () => ({ status: 401, body: { statusCode: 401, error: 'Unauthorized' } })
    expect(await attempt()).toMatchObject({ code: 'SINK_REJECTED', retriable: false })
    answer = () => ({ status: 503, body: { statusCode: 503, error: 'Service Unavailable' } })
    expect(await attempt()).toMatchObject({ code: 'SINK_UNAVAILABLE', retriable: true })
    await new Promise<void>((r) => server.close(() => r()))
    expect(await attempt()).toMatchObject({ code: 'SINK_UNAVAILABLE', retriable: true })
    server.listen(0, '127.0.0.1')
  })

  it('trusts the CA file for an HTTPS Kibana', async () => {
    const tls = resolve(import.meta.dirname, '../../fixtures/elasticsearch/tls')
    const secure = createHttpsServer(
      { cert: readFileSync(`${tls}/server.pem`), key: readFileSync(`${tls}/server-key.pem`) },
      (req, res) => {
        req.resume()
        req.on('end', () => res.end(JSON.stringify({ success: true, successCount: 9, errors: [] })))
      },
    )
    await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r))
    const secureUrl = `https://127.0.0.1:${(secure.address() as AddressInfo).port}`
    try {
      const { log } = createTestRuntime()
      expect(await setupKibana(sinks({ url: secureUrl }, { ca_file: `${tls}/ca.pem` }), { log })).toEqual({
        imported: [{ file: 'edge-to-core.ndjson', objects: 9 }],
      })
      const error = await setupKibana(sinks({ url: secureUrl }), { log }).catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 'SINK_UNAVAILABLE', message: expect.stringMatching(/certificate/) })
    } finally {
      secure.closeAllConnections()
      await new Promise<void>((r) => secure.close(() => r()))
    }
  })

  it('needs a Kibana URL', async () => {
    const error = await setupKibana(sinks({}), { log: createTestRuntime().log }).catch((e: unknown) => e)
    expect(isNerveError(error) && error.code).toBe('CONFIG_INVALID')
  })
})
