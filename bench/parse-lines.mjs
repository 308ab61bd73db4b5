// The replay bench's baseline run from outside: JSON.parse of every line of a file, in a process of its
// own (started with nerve's V8 flag, as the bin is), so that its wall clock and CPU include a start-up as
// `nerve replay`'s do. Prints the number of lines parsed.
import { readFileSync } from 'node:fs'

let parsed = 0
for (const line of readFileSync(process.argv[2], 'utf8').split('\n')) {
  if (line === '') continue
  JSON.parse(line)
  parsed++
}
process.stdout.write(`${parsed}\n`)
