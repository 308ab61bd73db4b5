// `npm run bench [name…]`: runs every bench/*.bench.ts (or those whose file name contains a given word)
// one after another, each printing its own figures and ratios. Speed targets live here, never in tests.
// package.json runs it with nerve's own V8 flag (--max-semi-space-size=64, as npm start, the bin and the
// Docker image): what is measured is nerve as it runs.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const filters = process.argv.slice(2)
const dir = import.meta.dirname
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
  .sort()

// Every data directory a bench writes (a pipeline run leaves a 300 MB bus file) goes under one temp dir of
// this run, through TMPDIR (which os.tmpdir() reads, here and in the processes the benches start), removed
// at the end: left behind, repeated runs filled the disk.
const root = mkdtempSync(join(tmpdir(), 'nerve-bench-'))
process.env.TMPDIR = root
process.once('exit', () => rmSync(root, { recursive: true, force: true }))
// Stopped by a signal (Ctrl-C, a kill), the run still exits through 'exit': each bench kills the processes
// it started there, and the temp dir goes. A signal alone skipped both: a `nerve run` stopped that way
// stayed up for hours beside later measurements, with its 350 MB data dir.
process.once('SIGINT', () => process.exit(130))
process.once('SIGTERM', () => process.exit(143))
for (const file of files) {
  const mod = (await import(join(dir, file))) as { default: () => Promise<void> }
  process.stdout.write(`\n== ${file.replace('.bench.ts', '')} ==\n`)
  await mod.default()
}
