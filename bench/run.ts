// `npm run bench [name…]`: runs every bench/*.bench.ts (or those whose file name contains a given word)
// one after another, each printing its own figures and ratios. Speed targets live here, never in tests.
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
