// Child process for the kill -9 test in store-index-build-failure.test.ts: opens a store of an earlier
// version as the store's writer thread does (the index build deferred), prints `building` on stdout as the
// build starts (a pipe: written before the build runs), then builds. The parent kills it meanwhile.
// Usage: node --import tsx store-index-build-child.ts <dataDir>
import { createMetrics } from '../../../runtime/metrics.ts'
import { createCorrelationStore } from '../../../sinks/correlation-store.ts'

const [dataDir] = process.argv.slice(2) as [string]
const store = createCorrelationStore(
  { data_dir: dataDir },
  {
    metrics: createMetrics(),
    deferIndexes: true,
    onIndexBuild: (build) => {
      if (build.ms === undefined && build.failed === undefined) process.stdout.write('building\n')
    },
  },
)
store.buildIndexes()
process.stdout.write('built\n')
