// `npm run bench [name…]`: runs every bench/*.bench.ts (or those whose file name contains a given word)
// one after another, each printing its own figures and ratios. Speed targets live here, never in tests.
// package.json runs it with nerve's own V8 flag (--max-semi-space-size=64, as npm start, the bin and the
// Docker image): what is measured is nerve as it runs.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

const filters = process.argv.slice(2)
const dir = import.meta.dirname
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
  .sort()

for (const file of files) {
  const mod = (await import(join(dir, file))) as { default: () => Promise<void> }
  process.stdout.write(`\n== ${file.replace('.bench.ts', '')} ==\n`)
  await mod.default()
}
