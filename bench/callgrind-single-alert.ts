// Instructions per single-alert request of `nerve run`, counted by valgrind's callgrind: the figure that
// stays put on a shared machine, where CPU time moves by ±30 % with the others' load. `nerve run` (the
// checkout ROOT, default this one) is started under callgrind with collection off; this process posts
// WARMUP real alerts (50 keep-alive connections, each alert a distinct event, as `npm run bench ingest`),
// turns collection on, posts REQUESTS more, turns it off and dumps. Prints the instructions per request of
// the main thread and of every thread, and the main thread's largest functions (its JavaScript shows as
// addresses: callgrind does not read V8's code map). Slow: about 5 minutes at the defaults.
//   node --import tsx bench/callgrind-single-alert.ts [ROOT]   (env WARMUP=3000 REQUESTS=4000 OUT=dir
//   AGENT_BUDGET=1000000)
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { join } from 'node:path'
import { tempDir } from '../tests/helpers/random-names.ts'
import { freePort, sleep } from './nerve-child.ts'

const root = process.argv[2] ?? join(import.meta.dirname, '..')
const warmup = Number(process.env.WARMUP ?? 3000)
const requests = Number(process.env.REQUESTS ?? 4000)
const connections = 50
const token = 'nrv_bench-token-0123456789abcdef'
const dir = process.env.OUT ?? tempDir('nerve-callgrind')
mkdirSync(dir, { recursive: true })
// A publish that waits longer than this is spooled instead: under valgrind a group commit can be slow,
// and the spool's path (written, read back, published again) is not the one measured. The alerts are one
// agent's and one rule's: the edge budget (ingest.agent_budget) would fold nearly all of them, so it is
// set past the run's alerts (each still looked up) unless AGENT_BUDGET says otherwise (100: the folded path).
const budget = Number(process.env.AGENT_BUDGET ?? 1_000_000)
const config = {
  log: { level: 'warn' },
  ingest: { falco_spool_after: '10m', agent_budget: { alerts_per_rule_per_minute: budget } },
}
writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
const port = await freePort()
const out = join(dir, 'callgrind.out')
const valgrind = [
  '-q',
  '--tool=callgrind',
  '--instr-atstart=no',
  '--separate-threads=yes',
  '--smc-check=all-non-file',
  `--callgrind-out-file=${out}`,
]
const child = spawn(
  'valgrind',
  [...valgrind, process.execPath, '--max-semi-space-size=64', 'bin/nerve.mjs', 'run'],
  {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      NERVE_CONFIG: join(dir, 'config.json'),
      NERVE_DATA_DIR: join(dir, 'data'),
      NERVE_HTTP_HOST: '127.0.0.1',
      NERVE_HTTP_PORT: String(port),
      NERVE_INGEST_TOKEN: token,
    },
  },
)
const kill = () => child.kill('SIGKILL')
process.once('exit', kill)

const fixture = join(import.meta.dirname, '../tests/fixtures/falco/falco-website.ndjson')
const alert = JSON.parse(readFileSync(fixture, 'utf8').trim().split('\n')[19] as string)
const cmdline = String(alert.output_fields['proc.cmdline'])
let sent = 0
const agent = new Agent({ keepAlive: true, maxSockets: connections })

const call = (path: string, body?: string) =>
  new Promise<number>((resolve, reject) => {
    const headers =
      body === undefined ? {} : { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    const req = request(
      { host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', agent, headers },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end(body)
  })

const post = async (count: number) => {
  let left = count
  const connection = async () => {
    while (left-- > 0) {
      alert.output_fields['proc.cmdline'] = `${cmdline} ${sent++}`
      const body = JSON.stringify(alert)
      // A kept-alive connection the server closed as it was reused (its keep-alive timeout, under
      // valgrind's pace) fails at once: sent again, on a new one.
      const status = await call('/v1/falco', body).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNRESET') return call('/v1/falco', body)
        throw err
      })
      if (status !== 202) throw new Error(`POST /v1/falco answered ${status}.`)
    }
  }
  await Promise.all(Array.from({ length: connections }, connection))
}

while ((await call('/readyz').catch(() => 0)) !== 200) {
  if (child.exitCode !== null) throw new Error(`nerve run exited with code ${child.exitCode}.`)
  await sleep(1000)
}
await post(warmup)
// valgrind runs the program in its own process: the pid is nerve's.
const control = (...args: string[]) =>
  execFileSync('callgrind_control', [...args, String(child.pid)], { stdio: 'ignore' })
control('-i', 'on')
await post(requests)
control('-i', 'off')
control('-d')
kill()
agent.destroy()

// One file per thread: `${out}.1-01` is the main thread.
const dumps = readdirSync(dir)
  .filter((f) => f.startsWith('callgrind.out.'))
  .sort()
const totals = dumps.map((f) => {
  const text = readFileSync(join(dir, f), 'utf8')
  return { file: f, instructions: Number(/^totals: (\d+)/m.exec(text)?.[1] ?? 0) }
})
const perRequest = (n: number) => Math.round(n / requests).toLocaleString('en')
const main = totals.find((t) => t.file.endsWith('-01'))
process.stdout.write(
  `instructions per request (${requests} after ${warmup}, ${root}): main thread ${perRequest(main?.instructions ?? 0)}, ` +
    `every thread ${perRequest(totals.reduce((n, t) => n + t.instructions, 0))}\n`,
)
for (const t of totals.filter((t) => t.instructions > requests * 1000))
  process.stdout.write(`  ${t.file}: ${perRequest(t.instructions)}\n`)
if (main) {
  const annotated = execFileSync('callgrind_annotate', ['--inclusive=no', join(dir, main.file)], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })
  const rows = annotated
    .split('\n')
    .filter((l) => /^\s*[\d,]+ \(\s*[\d.]+%\)\s+\S/.test(l) && !l.includes('PROGRAM TOTALS'))
  process.stdout.write(`main thread's largest functions (${dir}):\n${rows.slice(0, 25).join('\n')}\n`)
}
