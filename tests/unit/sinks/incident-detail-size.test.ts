// The watched agent decides how heavy its own incident is: thousands of correlations (an N × M flood), each
// with a Falco output of up to 16 KiB. The incident's detail answered the newest 1,000 of them, about 17 MB
// of JSON built on the main thread, and the console asked for it again every 5 seconds while an operator
// looked at it. `?correlations=N` (1..1000) asks for fewer; the console asks for 100.
import { afterEach, describe, expect, it } from 'vitest'
import { maxIncidentCorrelations } from '../../../sinks/store-reads.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

describe('an incident of a flood, in detail', () => {
  it('gives as many of its newest correlations as asked for, 1 to 1,000', async () => {
    const { store, get } = openStore()
    const incident = { id: 'inc-data-cleaner-flood' }
    store.writeCorrelations(Array.from({ length: 300 }, (_, n) => makeCorrelation(n, { incident })))
    const few = await get(`/v1/incidents/${incident.id}?correlations=100`)
    expect(few.status).toBe(200)
    expect(few.body.correlations).toHaveLength(100)
    expect(few.body.correlations[0].id).toBe(makeCorrelation(299).id)
    expect(few.body.incident.correlations).toBe(300)
    expect((await get(`/v1/incidents/${incident.id}`)).body.correlations).toHaveLength(300)
    expect(maxIncidentCorrelations).toBe(1000)
  })

  it('answers 400 for a count outside 1..1,000', async () => {
    const { store, get } = openStore()
    const incident = { id: 'inc-data-cleaner-flood' }
    store.writeCorrelations([makeCorrelation(0, { incident })])
    for (const query of ['correlations=0', 'correlations=1001', 'correlations=1e3', 'correlations=']) {
      const res = await get(`/v1/incidents/${incident.id}?${query}`)
      expect(res.status, query).toBe(400)
      expect(res.body.error.code, query).toBe('INPUT_INVALID')
    }
  })
})
