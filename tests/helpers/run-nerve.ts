// Runs the real `nerve` bin once to its end: exit code, stdout and stderr, whatever the code.
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { promisify } from 'node:util'

const bin = resolve(import.meta.dirname, '../../bin/nerve.mjs')
const exec = promisify(execFile)

export type NerveRun = { code: number; stdout: string; stderr: string }

/**
 * On port 0, logging warnings and up, killed after `timeoutMs`. A variable of `env` set to undefined is
 * unset (a config file's own value then counts: NERVE_HTTP_PORT is set otherwise).
 */
export async function runNerve(
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 60_000,
): Promise<NerveRun> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [bin, ...args], {
      env: { ...process.env, NERVE_HTTP_PORT: '0', NERVE_LOG_LEVEL: 'warn', ...env },
      timeout: timeoutMs,
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const { code, stdout, stderr } = err as { code: number; stdout: string; stderr: string }
    return { code, stdout, stderr }
  }
}
