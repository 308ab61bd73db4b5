// Starts ingest on an in-memory bus behind the real HTTP server (fastify inject, no port).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startIngest } from '../../../ingest/start-ingest.ts'
import { createHttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import type { AgentConfig, Config } from '../../../schemas/types.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'
import { createMemoryBus } from './memory-bus.ts'

export const token = 'nrv_ingest-test-token-0123456789'
export const auth = { authorization: `Bearer ${token}` }
export const fixtures = join(import.meta.dirname, '../../fixtures')
export const fixture = (path: string) => readFileSync(join(fixtures, path))
/** Every line of an NDJSON fixture, parsed. */
export const fixtureLines = (path: string) =>
  fixture(path)
    .toString()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))

export type HarnessOptions = {
  agents?: AgentConfig[]
  maxPending?: number
  /** ingest.falco_spool_bytes (default: the config's). */
  spoolBytes?: number
  /** ingest.falco_spool_after, ms. */
  spoolAfterMs?: number
  /** ingest.agent_budget.alerts_per_rule_per_minute (default: the config's; 0: no folding). */
  agentBudget?: number
  /** ingest.max_chained_links_per_workload (default: the config's). */
  maxChainedLinks?: number
  /** ingest.max_issued_links_per_workload (default: the config's). */
  maxIssuedLinks?: number
  clusters?: Config['clusters']
  http?: Partial<Config['http']>
  dataDir?: string
  now?: () => number
  selfIdentities?: string[]
  /** Narrower tokens (ingest.tokens): one per source kind, and `read`. */
  tokens?: Partial<Record<'falco' | 'cloudtrail' | 'firehose' | 'read', string>>
}

export async function startHarness(options: HarnessOptions = {}) {
  const rt = createTestRuntime({ level: 'info' })
  const dataDir = options.dataDir ?? tempDir('nerve-ingest')
  const base = loadConfig({ env: { NERVE_DATA_DIR: dataDir } })
  const config: Config = {
    ...base,
    agents: options.agents ?? [],
    http: { ...base.http, ...options.http },
    ingest: {
      ...base.ingest,
      max_pending_publishes: options.maxPending ?? base.ingest.max_pending_publishes,
      falco_spool_bytes: options.spoolBytes ?? base.ingest.falco_spool_bytes,
      falco_spool_after: options.spoolAfterMs ?? base.ingest.falco_spool_after,
      agent_budget: {
        alerts_per_rule_per_minute:
          options.agentBudget ?? base.ingest.agent_budget.alerts_per_rule_per_minute,
      },
      max_chained_links_per_workload: options.maxChainedLinks ?? base.ingest.max_chained_links_per_workload,
      max_issued_links_per_workload: options.maxIssuedLinks ?? base.ingest.max_issued_links_per_workload,
    },
    revoke: { ...base.revoke, self_identities: options.selfIdentities ?? [] },
    ...(options.clusters ? { clusters: options.clusters } : {}),
  }
  const bus = createMemoryBus()
  const now = options.now ?? (() => 1_750_000_000_000)
  const ingest = await startIngest(config, { bus, log: rt.log, metrics: rt.metrics, now })
  const server = createHttpServer(config.http, {
    log: rt.log,
    metrics: rt.metrics,
    ingestToken: token,
    tokens: options.tokens,
  })
  server.addRoutes(ingest.routes)
  return { server, bus, rt, ingest, config, dataDir }
}

export const agent = (id: string, match: AgentConfig['match']): AgentConfig => ({
  id,
  protected: false,
  match,
})
