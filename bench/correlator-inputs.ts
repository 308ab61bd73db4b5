// The inputs of bench/correlator-instructions.ts (read its header):
//   node --import tsx bench/correlator-inputs.ts DIR [EVENTS]
// writes DIR/replay.ndjson (the first EVENTS, default 40,000, events of the replay bench's input as the
// merge hands them to the correlator, stand-ins included; 200,000 is all of them) and DIR/pipeline.ndjson
// (the pipeline bench's first EVENTS events, normalized as ingest does), each with its config
// (DIR/<name>.config.json). Seeded: the same files every time.
import { rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keepRaw } from '../correlate/replay-filter.ts'
import { decodeReplayFiles } from '../ingest/decode-replay-files.ts'
import { defaultReplayBudgetBytes } from '../ingest/parse-byte-size.ts'
import { prepareReplay } from '../nerve-replay.ts'
import { loadConfig } from '../runtime/load-config.ts'
import type { Config } from '../schemas/types.ts'
import { cloudTrailRecord, falcoAlert, pipelineConfig } from './pipeline-events.ts'
import { writeReplayInput } from './replay.bench.ts'

async function writeInputs(dir: string, count: number): Promise<void> {
  const replayInput = writeReplayInput(dir)
  const replayConfig = loadConfig({ file: replayInput.config })
  const input = await prepareReplay(
    [{ path: replayInput.file, size: statSync(replayInput.file).size }],
    replayConfig,
    { order: 'time', budgetBytes: defaultReplayBudgetBytes, spillDir: tmpdir(), threads: 0 },
  )
  const merged: string[] = []
  try {
    for (const event of input.events()) {
      merged.push(JSON.stringify(event))
      if (merged.length === count) break
    }
  } finally {
    input.close()
  }
  rmSync(replayInput.file)
  writeFileSync(join(dir, 'replay.ndjson'), `${merged.join('\n')}\n`)
  writeFileSync(join(dir, 'replay.config.json'), JSON.stringify(replayConfig))

  const t0 = Date.UTC(2026, 10, 25, 8)
  const lines: string[] = []
  for (let round = 0; lines.length < count; round++)
    lines.push(falcoAlert(round, t0), cloudTrailRecord(round, t0, true), cloudTrailRecord(round, t0, false))
  const raw = join(dir, 'pipeline-input.ndjson')
  writeFileSync(raw, `${lines.join('\n')}\n`)
  const pipeline = configOf(pipelineConfig())
  const decoded = await decodeReplayFiles([raw], pipeline, {
    maxDepth: pipeline.http.max_depth,
    keepRaw,
    now: t0 + 86_400_000,
  })
  rmSync(raw)
  const events = [...decoded.events].map((event) => JSON.stringify(event))
  writeFileSync(join(dir, 'pipeline.ndjson'), `${events.join('\n')}\n`)
  writeFileSync(join(dir, 'pipeline.config.json'), JSON.stringify(pipeline))
}

/** The config of an object, validated and defaulted as a file's would be. */
function configOf(value: object): Config {
  const file = join(tmpdir(), `nerve-correlator-instructions-${process.pid}.json`)
  writeFileSync(file, JSON.stringify(value))
  try {
    return loadConfig({ file })
  } finally {
    rmSync(file)
  }
}

const [dir, events = '40000'] = process.argv.slice(2)
if (dir && Number(events) > 0) await writeInputs(dir, Number(events))
else {
  process.stderr.write('usage: correlator-inputs.ts DIR [EVENTS]\n')
  process.exitCode = 2
}
