// Starts `nerve run` as the benches measure it: its own process, started as `npm start` starts it (same V8
// flag), on a free loopback port, with a config and data directory of its own. With BENCH_CPU_PROF=DIR the
// process writes a V8 CPU profile into DIR when it stops (`node --cpu-prof`);
// `node --import tsx bench/profile-summary.ts DIR/CPU.*.cpuprofile` sums such a profile by function and file.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'

export type NerveChild = {
  base: string
  dataDir: string
  child: ChildProcess
  /** SIGTERM, then waits for the exit (and the CPU profile, when asked for). */
  stop(): Promise<void>
}

/** `root`: the checkout whose bin is started (default this one; the attack figures also measure an older one). */
export async function startNerveChild(
  dir: string,
  config: unknown,
  token: string,
  extraEnv: Record<string, string> = {},
  root = join(import.meta.dirname, '..'),
): Promise<NerveChild> {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
  const port = await freePort()
  const profileDir = process.env.BENCH_CPU_PROF
  const flags = ['--max-semi-space-size=64']
  if (profileDir) flags.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`)
  const dataDir = join(dir, 'data')
  const child = spawn(process.execPath, [...flags, 'bin/nerve.mjs', 'run'], {
    cwd: root,
    env: {
      ...process.env,
      NERVE_CONFIG: join(dir, 'config.json'),
      NERVE_DATA_DIR: dataDir,
      NERVE_HTTP_HOST: '127.0.0.1',
      NERVE_HTTP_PORT: String(port),
      NERVE_INGEST_TOKEN: token,
      ...extraEnv,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const kill = () => child.kill('SIGKILL')
  process.once('exit', kill)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const base = `http://127.0.0.1:${port}`
  await until(async () => {
    if (child.exitCode !== null)
      throw new Error(`nerve run exited with code ${child.exitCode} (stderr above).`)
    return (await fetch(`${base}/readyz`).catch(() => undefined))?.ok === true
  }, 60_000)
  return {
    base,
    dataDir,
    child,
    async stop() {
      child.kill('SIGTERM')
      await exited
      process.off('exit', kill)
    },
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`Not ready after ${timeoutMs} ms.`)
    await sleep(10)
  }
}
