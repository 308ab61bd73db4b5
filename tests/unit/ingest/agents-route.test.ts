// GET /v1/agents lists ARNs, access key ids and pods, like the store's lists, and keeps their contract: a
// page `{items, count, total, next}` newest first (by last seen), ISO twins of its times, the read
// headers, a 400 naming any parameter it does not take or cannot read, and the read token. Before: no
// Cache-Control or nosniff, `limit=0` or `limit=abc` answered everything, up to 10,000 at once, and an
// unknown parameter or `cursor=x` was a 200.
import { describe, expect, it } from 'vitest'
import { auth, fixture, startHarness } from './ingest-harness.ts'

type Summary = {
  id: string
  first_seen: number
  last_seen: number
  first_seen_iso: string
  last_seen_iso: string
}

/** Real Falco alerts (the falco.org examples) and CloudTrail records (Stratus Red Team's detonations). */
async function seenAgents(options: Parameters<typeof startHarness>[0] = {}) {
  const h = await startHarness(options)
  for (const [url, file] of [
    ['/v1/falco', 'falco/falco-website.ndjson'],
    ['/v1/cloudtrail', 'cloudtrail/stratus-red-team-detonation-logs.ndjson'],
  ] as const) {
    const res = await h.server.inject({ method: 'POST', url, payload: fixture(file), headers: auth })
    expect(res.statusCode, file).toBe(202)
  }
  const get = async (query = '', headers: Record<string, string> = auth) => {
    const res = await h.server.inject({ method: 'GET', url: `/v1/agents${query}`, headers })
    return { status: res.statusCode, headers: res.headers, body: res.json() }
  }
  return { ...h, get }
}

describe('GET /v1/agents', () => {
  it('answers a page of the agents seen, newest first, that no browser or proxy keeps', async () => {
    const { get } = await seenAgents()
    const res = await get()
    expect(res.status).toBe(200)
    expect(res.headers['cache-control']).toBe('no-store')
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    const items: Summary[] = res.body.items
    expect(res.body.count).toBe(items.length)
    expect(res.body.total).toBe(items.length)
    expect(res.body.next).toBeUndefined()
    expect(items.length).toBeGreaterThan(3)
    const order = items.map((a) => [-a.last_seen, a.id] as const)
    expect(order).toEqual([...order].sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? 1 : -1)))
    for (const a of items) {
      expect(a.first_seen_iso).toBe(new Date(a.first_seen).toISOString())
      expect(a.last_seen_iso).toBe(new Date(a.last_seen).toISOString())
    }
  })

  it('pages with limit and cursor, every agent once, and finds one by id', async () => {
    const { get } = await seenAgents()
    const all: Summary[] = (await get()).body.items
    const paged: Summary[] = []
    let query = '?limit=2'
    for (;;) {
      const page = await get(query)
      expect(page.status).toBe(200)
      expect(page.body.count).toBeLessThanOrEqual(2)
      expect(page.body.total).toBe(all.length)
      paged.push(...page.body.items)
      if (!page.body.next) break
      query = `?limit=2&cursor=${page.body.next}`
    }
    expect(paged.map((a) => a.id)).toEqual(all.map((a) => a.id))
    const one = all[all.length - 1] as Summary
    const found = await get(`?agent=${encodeURIComponent(one.id)}`)
    expect(found.body).toMatchObject({ items: [one], count: 1, total: 1 })
  })

  it('refuses a query it cannot read with a 400 naming the parameter, as the store lists do', async () => {
    const { get } = await seenAgents()
    for (const [query, param] of [
      ['?limit=0', 'limit'],
      ['?limit=abc', 'limit'],
      ['?limit=1001', 'limit'],
      ['?limit=10000', 'limit'],
      ['?cursor=x', 'cursor'],
      ['?since=yesterday', 'since'],
      ['?role=admin', 'role'],
      ['?agent=a&agent=b', 'agent'],
    ]) {
      const res = await get(query)
      expect(res.status, query).toBe(400)
      expect(res.body.error.code, query).toBe('INPUT_INVALID')
      expect(
        res.body.error.details.map((d: { path: string }) => d.path),
        query,
      ).toEqual([param])
    }
  })

  it('is opened by the read token off loopback, never by a source token', async () => {
    const tokens = { read: 'nrv_read-0123456789abcdef', falco: 'nrv_falco-0123456789abcdef' }
    const { get } = await seenAgents({ http: { host: '0.0.0.0' }, tokens })
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
    expect((await get('', {})).status).toBe(401)
    expect((await get('', bearer(tokens.falco))).status).toBe(401)
    expect((await get('', bearer(tokens.read))).status).toBe(200)
    expect((await get('', auth)).status).toBe(200)
  })
})
