// A small Elasticsearch on 127.0.0.1 for the sink tests: the real @elastic/elasticsearch client talks to it
// over HTTP. It keeps templates and policies (PUT replaces, GET returns), answers _bulk `create` like a data
// stream (201, then 409 for an _id already there), and lets a test script any answer first.
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'

export type FakeRequest = {
  method: string
  path: string
  headers: IncomingMessage['headers']
  body: string
}

export type FakeResponse = { status: number; body: unknown } | 'drop-connection'

export type BulkAction = { create: { _index: string; _id: string } }

export type FakeElasticsearch = {
  url: string
  requests: FakeRequest[]
  /** Objects PUT so far, by path (`/_index_template/nerve-events` → body). */
  objects: Map<string, unknown>
  /** Indexed documents by `<data stream>/<_id>`. */
  documents: Map<string, Record<string, unknown>>
  /** Scripted answers, tried in order before the default behaviour; return undefined to pass. */
  script: ((req: FakeRequest) => FakeResponse | undefined)[]
  bulkRequests(): { action: BulkAction; doc: Record<string, unknown> }[][]
  close(): Promise<void>
}

/** `tls`: serve HTTPS with this certificate (tests/fixtures/elasticsearch/tls). */
export async function startFakeElasticsearch(
  opts: { tls?: { cert: Buffer; key: Buffer } } = {},
): Promise<FakeElasticsearch> {
  const requests: FakeRequest[] = []
  const objects = new Map<string, unknown>()
  const documents = new Map<string, Record<string, unknown>>()
  const script: FakeElasticsearch['script'] = []

  const answer = (req: FakeRequest): FakeResponse => {
    for (const step of script) {
      const scripted = step(req)
      if (scripted) return scripted
    }
    if (req.method === 'POST' && req.path.startsWith('/_bulk')) return bulk(req)
    if (req.method === 'PUT') {
      objects.set(req.path, JSON.parse(req.body))
      return { status: 200, body: { acknowledged: true } }
    }
    if (req.method === 'GET' && objects.has(req.path)) return { status: 200, body: objects.get(req.path) }
    return { status: 404, body: { error: { type: 'resource_not_found_exception', reason: req.path } } }
  }

  const bulk = (req: FakeRequest): FakeResponse => {
    const items = parseBulk(req.body).map(({ action, doc }) => {
      const key = `${action.create._index}/${action.create._id}`
      if (documents.has(key)) {
        return {
          create: { status: 409, error: { type: 'version_conflict_engine_exception', reason: 'exists' } },
        }
      }
      documents.set(key, doc)
      return { create: { status: 201 } }
    })
    return { status: 200, body: { errors: items.some((i) => i.create.status >= 300), items } }
  }

  const listener: RequestListener = (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const raw = Buffer.concat(chunks)
      const body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8')
      const request = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body }
      requests.push(request)
      const response = answer(request)
      if (response === 'drop-connection') {
        req.socket.destroy()
        return
      }
      res.writeHead(response.status, {
        'content-type': 'application/vnd.elasticsearch+json;compatible-with=9',
        'x-elastic-product': 'Elasticsearch',
      })
      res.end(JSON.stringify(response.body))
    })
  }
  const server: Server = opts.tls ? createTlsServer(opts.tls, listener) : createServer(listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    objects,
    documents,
    script,
    bulkRequests: () => requests.filter((r) => r.path.startsWith('/_bulk')).map((r) => parseBulk(r.body)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

export function parseBulk(body: string): { action: BulkAction; doc: Record<string, unknown> }[] {
  const lines = body.split('\n').filter(Boolean)
  const pairs: { action: BulkAction; doc: Record<string, unknown> }[] = []
  for (let i = 0; i < lines.length; i += 2) {
    pairs.push({ action: JSON.parse(lines[i] as string), doc: JSON.parse(lines[i + 1] as string) })
  }
  return pairs
}

/** A bulk answer where item i gets statuses[i] (errors for anything ≥ 300). */
export function bulkAnswer(statuses: readonly number[]): FakeResponse {
  const errorType = (status: number) =>
    status === 409
      ? 'version_conflict_engine_exception'
      : status === 429
        ? 'es_rejected_execution_exception'
        : status >= 500
          ? 'unavailable_shards_exception'
          : 'document_parsing_exception'
  return {
    status: 200,
    body: {
      errors: statuses.some((s) => s >= 300),
      items: statuses.map((status) => ({
        create:
          status < 300
            ? { status }
            : { status, error: { type: errorType(status), reason: `failed with ${status}` } },
      })),
    },
  }
}
