// The replay-scale bench's phase split, read from outside: the merge phase starts when the replay's first
// output bytes are written. `--out FILE` is written as `.FILE.PID.partial` and renamed only once whole
// (runtime/output-file.ts), so the split must watch that file: FILE appears only at the very end.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { samplePhases } from '../../../bench/replay-phases.ts'
import { tempDir } from '../../helpers/random-names.ts'
import { waitFor } from '../../helpers/wait-for.ts'

const outputFile = join(import.meta.dirname, '../../../runtime/output-file.ts')

/** A node process that writes its output as `nerve replay --out` does: a first block, then the rest once stdin ends. */
function writer(out: string): ChildProcess {
  const script = join(tempDir('nerve-replay-phases'), 'writer.mts')
  writeFileSync(
    script,
    `import { openOutput } from ${JSON.stringify(outputFile)}
    const out = await openOutput(${JSON.stringify(out)})
    await out.write('{"first":"correlation"}\\n')
    process.stdin.resume()
    await new Promise((resolve) => process.stdin.once('end', resolve))
    await out.end('{"last":"correlation"}\\n')`,
  )
  return spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['pipe', 'ignore', 'inherit'] })
}

describe.skipIf(process.platform !== 'linux')('replay phases (Linux only: /proc)', () => {
  it('starts the merge phase at the first bytes of an --out file still being written', async () => {
    const out = join(tempDir('nerve-replay-phases'), 'out.ndjson')
    const child = writer(out)
    const exited = new Promise((resolve) => child.once('exit', resolve))
    const sampler = samplePhases(child.pid as number, out, 20)
    try {
      // The output is not in place yet: only its partial file holds the first block.
      await waitFor(() => sampler.merging(), { what: 'the merge phase to start' })
      expect(existsSync(out)).toBe(false)
    } finally {
      child.stdin?.end()
      await exited
    }
    const phases = sampler.stop()
    expect(phases.decode).toBeDefined()
    expect(phases.merge).toBeDefined()
    expect(readFileSync(out, 'utf8')).toBe('{"first":"correlation"}\n{"last":"correlation"}\n')
  })
})
