// The read API's filters against the simplest scan there is: every correlation the store was given, filtered
// and sorted in JavaScript. Whatever the filters (agent, incident, rule as a nerve or a Falco rule,
// min_score, revoke status, since, until) and the page size, following `next` from the first page reaches
// exactly the matching items, newest first by (time, id), each once, with every page's `total` the number
// that match and no `next` on the last page; incidents the same way. Read in steps of thousands of rows
// (one, for these stores) or of a few (stepped-scan.ts), the pages are the same.
import { join } from 'node:path'
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import type { Correlation, RevokeOutcome } from '../../../schemas/types.ts'
import { answerStoreRead, type StoreReadUrl } from '../../../sinks/store-api.ts'
import { createStoreReads, type StoreReads } from '../../../sinks/store-reads.ts'
import { makeCorrelation } from './correlation-fixture.ts'
import { closeStores, openStore } from './store-harness.ts'

afterEach(closeStores)

const agents = ['data-cleaner', 'report-bot', 'etl']
const rules = ['outbound-then-iam-write', 'shell-then-secrets', 'Terminal shell in container']
const falcoRules = [
  'Terminal shell in container',
  'Unexpected outbound connection destination',
  'Read sensitive file',
]
const statuses = ['pending', 'sent', 'failed', 'suppressed', 'dry_run'] as const
const base = Date.UTC(2026, 10, 25, 16)

/** A correlation from small numbers: few distinct times (ties on time are broken by the id), agents, rules. */
const correlationArb = fc.record({
  minute: fc.integer({ min: 0, max: 7 }),
  agent: fc.integer({ min: 0, max: 2 }),
  incident: fc.integer({ min: 0, max: 1 }),
  rule: fc.integer({ min: 0, max: 2 }),
  falco: fc.integer({ min: 0, max: 2 }),
  // Few scores, so that a score equal to min_score is common.
  score: fc.constantFrom(0, 55, 70, 91, 100),
})
/** Outcomes of the first agents' incidents (and one no correlation names), several per incident. */
const outcomeArb = fc.record({
  incident: fc.integer({ min: 0, max: 6 }),
  status: fc.constantFrom(...statuses),
  minute: fc.integer({ min: 0, max: 3 }),
})
const filterArb = fc.record(
  {
    agent: fc.constantFrom(...agents, 'nobody'),
    incident: fc.integer({ min: 0, max: 6 }),
    rule: fc.constantFrom(...rules, ...falcoRules, 'nope'),
    min_score: fc.constantFrom(0, 55, 70, 71, 100),
    status: fc.constantFrom(...statuses, 'none'),
    since: fc.integer({ min: 0, max: 8 }),
    until: fc.integer({ min: 0, max: 8 }),
  },
  { requiredKeys: [] },
)

type Generated = {
  minute: number
  agent: number
  incident: number
  rule: number
  falco: number
  score: number
}

function correlationOf(g: Generated, n: number): Correlation {
  const agent = agents[g.agent] as string
  const time = base + g.minute * 60_000
  const c = makeCorrelation(n)
  return {
    ...c,
    // Ids in no order of n, so that the (time, id) order is not the order of writing.
    id: `c${((n * 7919) % 1000).toString().padStart(3, '0')}-${n}`,
    time,
    rule: { ...c.rule, id: rules[g.rule] as string },
    agent: { ...c.agent, id: agent },
    edge: { ...c.edge, rule: falcoRules[g.falco] as string, time: time - 30_000 },
    core: { ...c.core, time },
    score: g.score,
    incident: { id: incidentId(g.agent * 2 + g.incident) },
  }
}
const incidentId = (k: number) => `inc-${agents[Math.floor(k / 2)] ?? 'none'}-${k % 2}`

function outcomeOf(o: { incident: number; status: RevokeOutcome['status']; minute: number }, n: number) {
  const incident = incidentId(o.incident)
  return {
    id: `rvk_${n}:1`,
    decision_id: `rvk_${n}`,
    time: base + o.minute * 60_000,
    correlation_id: 'c',
    incident_id: incident,
    agent_id: incident.split('-').slice(1, -1).join('-'),
    status: o.status,
    reason: 'test',
    attempts: 1,
  } satisfies RevokeOutcome
}

/** The incident's revoke status as the API documents it: a delivery or decision before a suppression. */
function statusOf(incident: string, outcomes: RevokeOutcome[]): string {
  const mine = outcomes
    .filter((o) => o.incident_id === incident)
    .sort(
      (a, b) =>
        Number(a.status === 'suppressed') - Number(b.status === 'suppressed') ||
        b.time - a.time ||
        (a.id < b.id ? 1 : -1),
    )
  return mine[0]?.status ?? 'none'
}

function queryOf(filter: Record<string, string | number>, limit: number, list: 'correlations' | 'incidents') {
  const params = new URLSearchParams({ limit: String(limit) })
  for (const [key, value] of Object.entries(filter)) {
    if (key === 'incident' && list === 'incidents') continue
    if (key === 'incident') params.set(key, incidentId(value as number))
    else if (key === 'since' || key === 'until') params.set(key, String(base + (value as number) * 60_000))
    else params.set(key, String(value))
  }
  return params
}

const newestFirst = (a: { t: number; id: string }, b: { t: number; id: string }) =>
  b.t - a.t || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)

type WalkedPage = { total: number; count: number; items: { id: string }[]; next?: string }

/** Reads a URL of the store's routes from `reads`, as the reader thread answers it. */
const steppedGet = (reads: StoreReads) => async (url: string) => {
  const { pathname, searchParams } = new URL(url, 'http://localhost')
  const res = answerStoreRead(reads, pathname as StoreReadUrl, { query: Object.fromEntries(searchParams) })
  return { status: res.status, body: JSON.parse(JSON.stringify(res.body)) }
}

/** Follows `next` from the first page; every page's total and count checked on the way. */
async function walk(
  get: (url: string) => Promise<{ status: number; body: WalkedPage }>,
  path: string,
  params: URLSearchParams,
  total: number,
) {
  const seen: string[] = []
  let url = `${path}?${params}`
  for (let page = 0; page <= total + 1; page++) {
    const { status, body } = await get(url)
    expect(status, url).toBe(200)
    expect(body.total, url).toBe(total)
    expect(body.count).toBe(body.items.length)
    expect(body.items.length).toBeLessThanOrEqual(Number(params.get('limit')))
    seen.push(...body.items.map((i: { id: string }) => i.id))
    if (!body.next) return seen
    expect(body.items.length).toBe(Number(params.get('limit')))
    url = `${path}?${params}&cursor=${body.next}`
  }
  throw new Error(`${path} kept handing out a next page`)
}

describe('read API filters against a scan of every item', () => {
  it('give exactly the matching correlations and incidents, newest first, over every page', async () => {
    const { store, get, dataDir } = openStore()
    // Each run starts from an empty store, emptied by another connection (the writer then forgets what it
    // cached of its incidents, as it does whenever another connection has written).
    const other = new Database(join(dataDir, 'store.sqlite'))
    const empty = () =>
      other.exec(
        'DELETE FROM correlations; DELETE FROM incidents; DELETE FROM revoke_outcomes; DELETE FROM incident_aliases',
      )
    const reader = new Database(join(dataDir, 'store.sqlite'), { readonly: true })
    await fc.assert(
      fc.asyncProperty(
        fc.array(correlationArb, { maxLength: 40 }),
        fc.array(outcomeArb, { maxLength: 12 }),
        filterArb,
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 5 }),
        async (generated, generatedOutcomes, filter, limit, stepRows) => {
          empty()
          const all = generated.map(correlationOf)
          const outcomes = generatedOutcomes.map(outcomeOf)
          store.writeCorrelations(all)
          store.writeOutcomes(outcomes)
          const f = filter as Record<string, string | number>
          const since = f.since === undefined ? undefined : base + (f.since as number) * 60_000
          const until = f.until === undefined ? undefined : base + (f.until as number) * 60_000
          const within = (t: number) =>
            (since === undefined || t >= since) && (until === undefined || t <= until)
          const status = (incident: string) =>
            f.status === undefined || statusOf(incident, outcomes) === f.status

          const correlations = all
            .filter(
              (c) =>
                (f.agent === undefined || c.agent.id === f.agent) &&
                (f.incident === undefined || c.incident.id === incidentId(f.incident as number)) &&
                (f.rule === undefined || c.rule.id === f.rule || c.edge.rule === f.rule) &&
                (f.min_score === undefined || c.score >= (f.min_score as number)) &&
                status(c.incident.id) &&
                within(c.time),
            )
            .map((c) => ({ t: c.time, id: c.id }))
            .sort(newestFirst)
            .map((c) => c.id)
          const path = '/v1/correlations'
          const params = queryOf(f, limit, 'correlations')
          expect(await walk(get, path, params, correlations.length)).toEqual(correlations)
          // The same pages read in steps of a few rows (the reader thread reads in steps of thousands).
          const stepped = steppedGet(createStoreReads(reader, { stepRows }))
          expect(await walk(stepped, path, params, correlations.length)).toEqual(correlations)

          const byIncident = new Map<string, Correlation[]>()
          for (const c of all) byIncident.set(c.incident.id, [...(byIncident.get(c.incident.id) ?? []), c])
          const incidents = [...byIncident]
            .map(([id, cs]) => ({
              id,
              t: Math.max(...cs.map((c) => c.time)),
              agent: cs[0]?.agent.id,
              score: Math.max(...cs.map((c) => c.score)),
              rules: new Set(cs.flatMap((c) => [c.rule.id, c.edge.rule])),
            }))
            .filter(
              (i) =>
                (f.agent === undefined || i.agent === f.agent) &&
                (f.rule === undefined || i.rules.has(f.rule as string)) &&
                (f.min_score === undefined || i.score >= (f.min_score as number)) &&
                status(i.id) &&
                within(i.t),
            )
            .sort(newestFirst)
            .map((i) => i.id)
          const incidentParams = queryOf(f, limit, 'incidents')
          expect(await walk(get, '/v1/incidents', incidentParams, incidents.length)).toEqual(incidents)
          expect(await walk(stepped, '/v1/incidents', incidentParams, incidents.length)).toEqual(incidents)
        },
      ),
      { numRuns: 300 },
    )
    other.close()
    reader.close()
  }, 60_000)
})
