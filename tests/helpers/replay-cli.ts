// Runs the real `nerve replay` bin with the replay fixture's config, for the tests that compare its
// output bytes and summary across options (threads, budgets, argument order).
import { execFile } from 'node:child_process'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '../..')
const config = join(root, 'tests/fixtures/replay/nerve.yaml')

export type ReplayRun = {
  stdout: string
  /** stderr's lines, the summary last. */
  stderr: string[]
  summary: Record<string, unknown>
}

/** `nerve replay --config <fixture> ...args`; rejects with the child's error when it exits non-zero. */
export async function runReplay(args: string[]): Promise<ReplayRun> {
  const { stdout, stderr } = await run(
    process.execPath,
    [join(root, 'bin/nerve.mjs'), 'replay', '--config', config, ...args],
    { maxBuffer: 256 << 20 },
  )
  const lines = stderr.trim().split('\n')
  return { stdout, stderr: lines, summary: JSON.parse(lines.at(-1) as string) }
}
