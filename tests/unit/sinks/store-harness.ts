// The embedded store behind the read API, answered without a port (fastify inject), for the store's tests.
import { createHttpServer } from '../../../runtime/http-server.ts'
import { loadConfig } from '../../../runtime/load-config.ts'
import { type CorrelationStore, createCorrelationStore } from '../../../sinks/correlation-store.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { createTestRuntime } from '../../helpers/test-runtime.ts'

const open: CorrelationStore[] = []

/** Closes every store opened since the last call: call it in afterEach. */
export async function closeStores(): Promise<void> {
  for (const s of open.splice(0)) await s.close()
}

export function openStore(dataDir = tempDir('nerve-store'), options: { textsFromNerve?: boolean } = {}) {
  const rt = createTestRuntime()
  const store = createCorrelationStore({ data_dir: dataDir }, { metrics: rt.metrics, ...options })
  open.push(store)
  const server = createHttpServer(loadConfig().http, { log: rt.log, metrics: rt.metrics, ingestToken: 'x' })
  server.addRoutes(store.routes)
  const get = async (url: string) => {
    const res = await server.inject({ method: 'GET', url })
    return { status: res.statusCode, body: res.json() }
  }
  return { store, rt, dataDir, get }
}

/** Closes one store now (to reopen its data dir), so closeStores() leaves it alone. */
export async function closeStore(store: CorrelationStore): Promise<void> {
  open.splice(open.indexOf(store), 1)
  await store.close()
}
