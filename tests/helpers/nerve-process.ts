// Runs the real `nerve` bin as a child process on a free loopback port, for end-to-end tests.
import { type ChildProcess, spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { waitFor } from './wait-for.ts'

const bin = resolve(import.meta.dirname, '../../bin/nerve.mjs')

export type NerveProcess = {
  url: string
  token: string
  child: ChildProcess
  stderr(): string
  /** SIGTERM and wait for a clean exit; resolves to the exit code. */
  stop(): Promise<number | null>
  /** SIGKILL: no draining, no cleanup. */
  kill(): Promise<void>
}

export async function startNerve(args: string[], env: Record<string, string>): Promise<NerveProcess> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: {
      ...process.env,
      NERVE_HTTP_HOST: '127.0.0.1',
      NERVE_HTTP_PORT: '0',
      NERVE_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  child.stderr?.on('data', (chunk) => {
    err += String(chunk)
  })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  const url = await waitFor(() => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err)?.[1], {
    timeoutMs: 60_000,
    what: `nerve to listen (stderr so far: ${err})`,
  })
  const token = env.NERVE_INGEST_TOKEN ?? (/ingest token[^:]*: (\S+)/.exec(err)?.[1] as string)
  return {
    url,
    token,
    child,
    stderr: () => err,
    stop: async () => {
      child.kill('SIGTERM')
      return exited
    },
    kill: async () => {
      child.kill('SIGKILL')
      await exited
    },
  }
}
