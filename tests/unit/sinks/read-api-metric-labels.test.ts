// /metrics labels carry no text a caller chose: whatever paths, incident ids, filters or cursors are asked
// for (found or not, valid or not), nerve_http_requests_total gains no series beyond its routes and statuses.
import { afterEach, describe, expect, it } from 'vitest'
import { closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

const seriesOf = (text: string) => text.split('\n').filter((l) => l.startsWith('nerve_http_requests_total{'))

describe('the read API in /metrics', () => {
  it('labels requests by route and status only, whatever the caller asks for', async () => {
    const { rt, get } = openStore()
    const asked = (n: number) => [
      `/v1/incidents/inc-${n}-%E2%80%AE`,
      `/no/such/path/${n}`,
      `/v1/correlations?rule=r${n}`,
      `/v1/incidents?cursor=bad${n}`,
      `/v1/incidents?x${n}=1`,
    ]
    for (const url of asked(0)) await get(url)
    const before = seriesOf(await rt.metrics.render())
    expect(before.length).toBeGreaterThanOrEqual(3) // 200, 400 and 404 of their routes
    for (let n = 1; n <= 50; n++) for (const url of asked(n)) await get(url)
    const after = seriesOf(await rt.metrics.render())
    expect(after.map((l) => l.replace(/ \d+$/, ''))).toEqual(before.map((l) => l.replace(/ \d+$/, '')))
    for (const line of after) expect(line).not.toMatch(/inc-|such|r\d|bad|x\d/)
  })
})
