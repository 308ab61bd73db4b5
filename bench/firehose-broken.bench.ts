// How long `nerve run` holds its event loop while Firehose deliveries that are not JSON come in: three
// deliveries of about 16 MiB (firehose-stall's), each cut short by its last character, are posted at once;
// each must be answered 400 (why and where it is broken). Such a body was parsed whole, once it was found
// not to be one well-formed document, only to say why; its error is now found reading it in parts. The
// figure is the slowest /healthz answer of a round. BENCH_ROOT=DIR measures the checkout in DIR instead
// (an older commit, for a before and after in the same minutes).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../tests/helpers/random-names.ts'
import { delivery } from './firehose-stall.bench.ts'
import { slowestHealthzWhilePosting } from './healthz-while-posting.ts'

const rounds = Number(process.env.BENCH_STALL_ROUNDS ?? 3)

export default async function benchFirehoseBroken(): Promise<void> {
  const dir = tempDir('nerve-bench-firehose-broken')
  const files: string[] = []
  for (let d = 0; d < 3; d++) {
    files.push(join(dir, `broken-${d}.json`))
    writeFileSync(files[d] as string, delivery(d * 1_000_000, 16 * 1024 * 1024).text.slice(0, -1))
  }
  const worst = await slowestHealthzWhilePosting({
    dir,
    files,
    path: '/v1/cloudtrail/firehose',
    contentType: 'application/json',
    status: 400,
    rounds,
    root: process.env.BENCH_ROOT,
  })
  process.stdout.write(
    `firehose-broken slowest /healthz answer while 3 Firehose deliveries of 16 MiB cut short by one character are posted at once (each answered 400)${process.env.BENCH_ROOT ? ` [${process.env.BENCH_ROOT}]` : ''}: ` +
      `${worst.map((ms) => ms.toFixed(0)).join(', ')} ms  worst ${Math.max(...worst).toFixed(0)} ms\n`,
  )
}
