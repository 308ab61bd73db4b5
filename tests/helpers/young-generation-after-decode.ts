// Run as its own process (node --max-semi-space-size=64 --import tsx …), as the bin runs replay: keeps
// the young generation small, decodes the replay fixtures in `argv[2]` decoding threads, then allocates
// as a merge does (short-lived objects, some kept a while) and prints the young generation's size in MiB.
// With `argv[3]` (youngBytes, as the bin's replay passes it), the whole of mergeReplayFiles runs instead,
// over 24 hourly trail files, allocating likewise for each merged event.
import { rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { getHeapSpaceStatistics } from 'node:v8'
import { keepYoungGenerationSmall } from '../../ingest/replay-heap-bound.ts'

// Before the modules below are loaded, as the bin's replay does (loading them grows it otherwise).
keepYoungGenerationSmall()
const { createReplayFilter } = await import('../../correlate/replay-filter.ts')
const { createReplayOpener } = await import('../../ingest/open-replay-input.ts')
const { decodeReplayRuns } = await import('../../ingest/replay-decode-pool.ts')
const { loadConfig } = await import('../../runtime/load-config.ts')
const { tempDir } = await import('./random-names.ts')
const root = resolve(import.meta.dirname, '../..')
const config = loadConfig({ file: join(root, 'tests/fixtures/replay/nerve.yaml') })
const runDir = tempDir('nerve-young-generation')
const threads = Number(process.argv[2])
const youngBytes = process.argv[3] === undefined ? undefined : Number(process.argv[3])

/** Garbage as a merge makes it: short-lived objects, one in ten kept a while. */
const kept: unknown[] = []
const allocate = (count: number) => {
  for (let i = 0; i < count; i++) {
    const o = { i, s: `x${i}` }
    if (i % 10 === 0) kept.push(o)
    if (kept.length > 20_000) kept.length = 0
  }
}

if (youngBytes !== undefined) {
  const { mergeReplayFiles } = await import('../../ingest/merge-replay-files.ts')
  const { writeHourlyTrail } = await import('./hourly-trail-files.ts')
  const files = writeHourlyTrail(runDir, { hours: 24, recordsPerFile: 1000 })
  try {
    const merged = await mergeReplayFiles(
      files.map((path) => ({ path, size: 0 })),
      config,
      {
        maxDepth: 64,
        open: createReplayOpener({}),
        env: {},
        filter: createReplayFilter(config),
        filterModule: pathToFileURL(join(root, 'correlate/replay-filter.ts')),
        threads,
        budgetBytes: 1 << 20,
        spillDir: runDir,
        youngBytes,
      },
    )
    for (const _ of merged.read()) allocate(100)
    merged.close()
  } finally {
    rmSync(runDir, { recursive: true, force: true })
  }
  const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0
  process.stdout.write(`${Math.round(young / 2 ** 20)}\n`)
  process.exit(0)
}
try {
  await decodeReplayRuns([join(root, 'tests/fixtures/replay/falco-alerts.ndjson')], config, {
    threads,
    maxDepth: 64,
    filter: createReplayFilter(config),
    filterModule: pathToFileURL(join(root, 'correlate/replay-filter.ts')),
    open: createReplayOpener({}),
    env: {},
    budgetBytes: 1 << 20,
    runDir,
    newRunPath: () => join(runDir, 'main.bin'),
    keepInvalid: 0,
    onEvents: () => {},
    onRun: () => {},
    onDone: () => {},
  })
} finally {
  rmSync(runDir, { recursive: true, force: true })
}
allocate(3_000_000)
const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0
process.stdout.write(`${Math.round(young / 2 ** 20)}\n`)
