// A fresh data dir with the embedded bus in it and the config that points there, as `nerve run` opens them
// for a stage thread that reads the bus's file (the correlator, the store writer). `close` closes the bus
// and removes the dir: after the stage it serves.
import { rmSync } from 'node:fs'
import { createEmbeddedBus } from '../../bus/embedded-bus.ts'
import { loadConfig } from '../../runtime/load-config.ts'
import { tempDir } from './random-names.ts'
import { createTestRuntime } from './test-runtime.ts'

export function openBusDataDir(name: string, bus: { partitions: number; maxBatch: number }) {
  const dataDir = tempDir(name)
  const rt = createTestRuntime()
  const embedded = createEmbeddedBus({ dataDir, retentionMs: 86_400_000, ...bus }, rt)
  return {
    dataDir,
    rt,
    bus: embedded,
    config: loadConfig({ env: { NERVE_DATA_DIR: dataDir } }),
    /** What a stage thread started on this dir is given (startCorrelateThread's deps). */
    stageDeps: () => ({ bus: embedded, busFile: embedded.file, log: rt.log, metrics: rt.metrics, dataDir }),
    close: async () => {
      await embedded.close()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
