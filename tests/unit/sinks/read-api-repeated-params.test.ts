// A query parameter given twice (`?rule=a&rule=b`) reaches the route as an array. The read API took it for
// a string: SQLite was handed an array, `since` an array to parse, and the answer was a 500 with an ERROR
// line in the operator's log per request, which any reader could repeat at will. It is a 400 naming the
// parameter, like any other invalid one, and nothing is logged.
import { afterEach, describe, expect, it } from 'vitest'
import { parseListQuery } from '../../../runtime/list-query.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

describe('a query parameter given more than once', () => {
  it('is a 400 naming it, on every list, and logs no error', async () => {
    const { store, get, rt } = openStore()
    store.writeCorrelations([makeCorrelation(0)])
    for (const [url, param] of [
      ['/v1/correlations?rule=a&rule=b', 'rule'],
      ['/v1/correlations?agent=a&agent=b', 'agent'],
      ['/v1/incidents?since=1&since=2', 'since'],
      ['/v1/incidents?status=a&status=b', 'status'],
      ['/v1/revokes?until=1&until=2', 'until'],
      ['/v1/incidents?limit=5&limit=6', 'limit'],
      ['/v1/incidents?cursor=a&cursor=b', 'cursor'],
    ]) {
      const res = await get(url as string)
      expect(res.status, url).toBe(400)
      expect(res.body.error.code, url).toBe('INPUT_INVALID')
      expect(
        res.body.error.details.map((d: { path: string }) => d.path),
        url,
      ).toContain(param)
    }
    expect(rt.logs.filter((l) => l.level === 'error')).toEqual([])
  })

  it('is refused by the parser itself, so the dead-letter and late-event lists refuse it too', () => {
    const query = { component: ['a', 'b'] } as unknown as Record<string, string>
    expect(() => parseListQuery(query, ['component'])).toThrow(/component: must be given once/)
  })
})
