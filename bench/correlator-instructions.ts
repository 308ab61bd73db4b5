// The correlator alone on a fixed input, for valgrind's callgrind: instruction counts repeat within about
// half a per cent of the correlator's part whatever the machine's load (with the flag below), where CPU
// time moves by a third. The inputs come from
// bench/correlator-inputs.ts; then, per tree to compare, this file bundled by esbuild (so that no
// TypeScript is compiled while counting) and run under callgrind:
//   npx esbuild bench/correlator-instructions.ts --bundle --platform=node --format=esm --outfile=OUT.mjs
//   valgrind --tool=callgrind node --single-threaded OUT.mjs DIR/replay.ndjson [skip|twice|skip2|hash]
// It parses each line and feeds it to one correlator (`pass` for a stand-in, `accept` otherwise; the
// pipeline's with `takeChanges()` every 2,000 events, as the correlate thread saves). `skip` parses and
// does not feed: the count to subtract. `twice` feeds the lines again to a second correlator once the
// first is done, and `skip2` parses them twice and feeds none (a second pass in the same process; V8
// compiles much of it again for the new correlator's closures). `hash` prints the correlations' sha256
// (their JSON), which must not change; it is left out of the counted runs. Add
// `--predictable-gc-schedule` to node's flags: without it the collector's schedule follows the clock and
// the counts move by a few per cent under load.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createCorrelator } from '../correlate/correlator.ts'
import { correlatorConfigOf } from '../correlate/correlator-config.ts'
import type { TimeOnlyEvent } from '../correlate/replay-correlations.ts'
import type { Config, NormalizedEvent } from '../schemas/types.ts'

const saveEvery = 2_000

/**
 * Parses each line and feeds it to a fresh correlator, or only parses (`feed` false): as in replay's merge
 * and the correlate thread, an event is parsed just before the correlator takes it and dropped after.
 * Returns the correlations' count and, with `hash`, their sha256.
 */
function feedLines(config: Config, lines: string[], saves: boolean, feed: boolean, hash: boolean) {
  const correlator = createCorrelator(correlatorConfigOf(config), undefined, { trackChanges: saves })
  const sha = createHash('sha256')
  let correlations = 0
  for (let n = 0; n < lines.length; n++) {
    const event = JSON.parse(lines[n] as string) as NormalizedEvent | TimeOnlyEvent
    if (!feed) continue
    const ignored = (event as Partial<TimeOnlyEvent>).ignored
    if (ignored !== undefined) correlator.pass(event.time, ignored)
    else
      for (const correlation of correlator.accept(event as NormalizedEvent).correlations) {
        if (hash) sha.update(JSON.stringify(correlation))
        correlations++
      }
    if (saves && n % saveEvery === saveEvery - 1) correlator.takeChanges()
  }
  return { correlations, sha256: sha.digest('hex').slice(0, 16) }
}

function run(file: string, mode = 'run'): void {
  const config = JSON.parse(readFileSync(file.replace(/\.ndjson$/, '.config.json'), 'utf8')) as Config
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n')
  const saves = file.endsWith('pipeline.ndjson')
  const feed = mode === 'run' || mode === 'twice' || mode === 'hash'
  const result = feedLines(config, lines, saves, feed, mode === 'hash')
  if (mode === 'twice' || mode === 'skip2') feedLines(config, lines, saves, feed, false)
  process.stdout.write(
    `${lines.length} events, ${result.correlations} correlations, sha256 ${result.sha256}\n`,
  )
}

const [path, mode] = process.argv.slice(2)
if (path) run(path, mode)
else {
  process.stderr.write('usage: correlator-instructions.ts FILE [skip|hash]\n')
  process.exitCode = 2
}
