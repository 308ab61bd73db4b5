// Run as its own process (node --stack-size=120 --import tsx …), so that one call takes far fewer
// arguments than with the default stack (about 15,000 instead of 125,000): drains the Falco spool in
// `argv[2]` into a publisher that prints each request's first event's output (or null), one JSON line per
// request, and exits once the spool holds nothing.
import { createFalcoSpool } from '../../ingest/falco-spool.ts'
import { createTestRuntime } from './test-runtime.ts'
import { waitFor } from './wait-for.ts'

const rt = createTestRuntime()
let published = 0
const spool = createFalcoSpool(
  { dir: process.argv[2] as string, maxBytes: 1024 ** 3, patienceMs: 60_000 },
  {
    publisher: {
      checkCapacity: () => {},
      publish: async (_component, decoded) => {
        published++
        process.stdout.write(`${JSON.stringify(decoded.events[0]?.edge?.output ?? null)}\n`)
      },
      pending: () => 0,
      drain: async () => {},
    },
    log: rt.log,
    metrics: rt.metrics,
  },
)
await waitFor(() => !spool.holding(), { what: 'the spool to drain', timeoutMs: 120_000 })
await spool.close()
process.stderr.write(`published ${published}\n`)
