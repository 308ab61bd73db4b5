// An incident has one first_seen and one last_seen, whoever is asked: the correlation record (the NDJSON
// line, the ES document, the webhook) and GET /v1/incidents. first_seen is the incident's earliest evidence,
// the earliest edge or core event time of its correlations; last_seen its latest. Built from real Stratus Red
// Team detonations, each after a real Falco shell alert of the same pod (stratus-detonations.ts).
import { afterEach, describe, expect, it } from 'vitest'
import type { Correlation } from '../../../schemas/types.ts'
import { detonate, stratusTechniques } from '../correlate/stratus-detonations.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

/** Each incident as its latest correlation record says it, the ids it replaced folded in, as a store does. */
function incidentsOfRecords(correlations: readonly Correlation[]) {
  const latest = new Map<string, Correlation['incident']>()
  for (const c of correlations) {
    for (const old of c.incident.merged ?? []) latest.delete(old)
    latest.set(c.incident.id, c.incident)
  }
  return [...latest.values()].map((i) => ({ id: i.id, first_seen: i.first_seen, last_seen: i.last_seen }))
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : 1)

describe("an incident's first and last seen", () => {
  it.each(
    stratusTechniques.filter(([name]) =>
      [
        'aws.credential-access.ec2-get-password-data',
        'aws.defense-evasion.cloudtrail-stop',
        'aws.persistence.iam-create-admin-user',
      ].includes(name),
    ),
  )('%s: the correlation record and /v1/incidents say the same', async (_name, from, to) => {
    const correlations = detonate(from, to)
    expect(correlations.length).toBeGreaterThan(0)
    const { store, get } = openStore()
    store.writeCorrelations(correlations)
    const { body } = await get('/v1/incidents?limit=100')
    const served = (body.items as { id: string; first_seen: number; last_seen: number }[])
      .map((i) => ({ id: i.id, first_seen: i.first_seen, last_seen: i.last_seen }))
      .sort(byId)
    expect(served).toEqual(incidentsOfRecords(correlations).sort(byId))
    // The earliest evidence: the Falco alert, 30 s before the detonation's first CloudTrail record.
    const earliest = Math.min(...correlations.map((c) => c.edge.time))
    expect(served[0]?.first_seen).toBe(earliest)
  })

  it('the store keeps the earliest evidence a record names, even of correlations it never received', async () => {
    // Over its per-rule bound the correlator counts a correlation on the incident without emitting it;
    // a later record carries the incident's first_seen with that correlation's evidence.
    const first = makeCorrelation(0)
    const earlierEvidence = first.edge.time - 45_000
    const later = makeCorrelation(1, {
      incident: { id: first.incident.id, first_seen: earlierEvidence, last_seen: makeCorrelation(1).time },
    })
    const { store, get } = openStore()
    store.writeCorrelations([first, later])
    const { body } = await get('/v1/incidents')
    expect(body.items).toMatchObject([{ id: first.incident.id, first_seen: earlierEvidence }])
  })
})
