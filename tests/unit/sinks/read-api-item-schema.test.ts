// schemas/correlation.schema.json says it describes the item of GET /v1/correlations: every item the read
// API answers must pass it, ISO 8601 twins of its times included (the audit found every one failing).
import { createHash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import type { Correlation } from '../../../schemas/types.ts'
import { compileSchema, formatValidationErrors } from '../../../schemas/validators.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

const isCorrelation = compileSchema<Correlation>('correlation.schema.json')
/** Incident ids are sha256 hex, as group-incidents.ts makes them. */
const incidentId = createHash('sha256').update('data-cleaner incident').digest('hex')

describe('the read API items and schemas/correlation.schema.json', () => {
  it('every correlation of GET /v1/correlations and of an incident detail validates', async () => {
    const { store, get } = openStore()
    const written = [0, 1, 2].map((n) => makeCorrelation(n, { incident: { id: incidentId } }))
    store.writeCorrelations(written)
    const list = (await get('/v1/correlations')).body.items as Correlation[]
    const detail = (await get(`/v1/incidents/${incidentId}`)).body.correlations as Correlation[]
    expect(list).toHaveLength(3)
    expect(detail).toHaveLength(3)
    for (const item of [...list, ...detail]) {
      const ok = isCorrelation(item)
      expect(formatValidationErrors(isCorrelation.errors), item.id).toEqual([])
      expect(ok).toBe(true)
    }
  })
})
