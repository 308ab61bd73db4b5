// Sums a V8 CPU profile (`node --cpu-prof`, e.g. the pipeline bench's with BENCH_CPU_PROF=DIR) by where the
// time was spent: self time per file (nerve's files by path, dependencies by package, Node's and V8's own
// work such as GC and native code by name) and the top functions. `--cpu-prof` writes one file per thread
// (main, the store writer, the SQLite checkpointers, tsx's loader): the main thread's is the first. Usage:
//   node --import tsx bench/profile-summary.ts DIR/CPU.*.cpuprofile
import { readFileSync } from 'node:fs'

type Node = {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const file = process.argv[2]
if (!file) throw new Error('Usage: profile-summary.ts FILE.cpuprofile')
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const self = new Map<number, number>()
profile.samples.forEach((id, i) => {
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
})
const total = [...self.values()].reduce((a, b) => a + b, 0)

const where = (url: string, name: string) => {
  if (!url) return `(${name || 'anonymous'})`
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (dep) return dep[1] as string
  if (url.startsWith('node:')) return url
  const own = /\/((?:bus|correlate|ingest|runtime|schemas|sinks)\/[^/]+|nerve\.ts)$/.exec(url)
  return own ? (own[1] as string) : url
}
const files = new Map<string, number>()
const functions = new Map<string, number>()
for (const [id, us] of self) {
  const { functionName, url, lineNumber } = (byId.get(id) as Node).callFrame
  const place = where(url, functionName)
  files.set(place, (files.get(place) ?? 0) + us)
  const fn = `${functionName || '(anonymous)'} ${place}${url ? `:${lineNumber + 1}` : ''}`
  functions.set(fn, (functions.get(fn) ?? 0) + us)
}
const top = (m: Map<string, number>, n: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(
      ([k, us]) =>
        `${((100 * us) / total).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`,
    )
    .join('\n')
const idle = files.get('((idle))') ?? files.get('(idle)') ?? 0
process.stdout.write(
  `thread: ${(total / 1000).toFixed(0)} ms sampled, ${((100 * (total - idle)) / total).toFixed(0)} % busy\n\nself time by file or package:\n${top(files, 25)}\n\ntop functions:\n${top(functions, 25)}\n`,
)
